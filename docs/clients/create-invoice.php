<?php
// Create a SEQR invoice through seqr-gateway from PHP (curl extension), then
// wait for its outcome on the gateway's event feed (GET /events with wait=: a
// long-poll, no polling loop). A shop that can receive webhooks gets the same
// events pushed instead: see webhook-receiver.php. Run: php create-invoice.php
$gateway = getenv('GATEWAY_URL') ?: 'http://127.0.0.1:8080';
$apiKey = getenv('API_KEY') ?: '';

function gateway(string $method, string $path, ?array $body = null, ?string $idempotencyKey = null): array {
    global $gateway, $apiKey;
    $ch = curl_init($gateway . $path);
    $headers = ['Content-Type: application/json'];
    if ($apiKey !== '') $headers[] = 'Authorization: Bearer ' . $apiKey;
    if ($idempotencyKey !== null) $headers[] = 'Idempotency-Key: ' . $idempotencyKey;
    curl_setopt_array($ch, [
        CURLOPT_CUSTOMREQUEST => $method,
        CURLOPT_HTTPHEADER => $headers,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_TIMEOUT => 60, // above the feed's wait=30
    ]);
    if ($body !== null) curl_setopt($ch, CURLOPT_POSTFIELDS, json_encode($body));
    $text = curl_exec($ch);
    if ($text === false) throw new RuntimeException('gateway unreachable: ' . curl_error($ch));
    $answer = json_decode($text, true);
    $status = curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
    curl_close($ch);
    if ($status >= 400) throw new RuntimeException($answer['error']['message'] ?? "HTTP $status");
    return $answer;
}

// One Idempotency-Key per payment attempt of an order: a retry of this very
// request (after a timeout) reuses it; a new attempt gets a new one.
$orderId = getenv('ORDER_ID') ?: '1001';
$idempotencyKey = 'order-' . $orderId . '-' . bin2hex(random_bytes(16));
$invoice = gateway('POST', '/invoices', [
    'currency' => 'SEK',                       // amounts are strings: exact, no floats
    'title' => 'Order ' . $orderId,
    'clientInvoiceId' => $orderId,
    'rows' => [['quantity' => '1', 'totalAmount' => '149.99', 'description' => 'T-shirt']],
], $idempotencyKey);
echo "Show this QR code: {$invoice['qrCode']} (image: /invoices/{$invoice['invoiceReference']}/qr.svg)\n";
echo "On a phone, link to: {$invoice['seqrUrl']}\n";

// The events that end an invoice, and the status each leaves it in.
$final = ['invoice.paid' => 'PAID', 'invoice.canceled' => 'CANCELED',
          'invoice.expired' => 'CANCELED', 'invoice.failed' => 'FAILED'];
// A shop keeps the feed's cursor ("next") in its database and starts from 0 once.
$cursor = (int)(getenv('EVENT_CURSOR') ?: 0);
$status = null;
while ($status === null) {
    $page = gateway('GET', "/events?after=$cursor&limit=100&wait=30");
    foreach ($page['events'] as $event) {
        if ($event['invoiceReference'] === $invoice['invoiceReference'] && isset($final[$event['type']])) {
            $status = $final[$event['type']];
        }
    }
    $cursor = $page['next'];
}
echo "Invoice is $status\n";
