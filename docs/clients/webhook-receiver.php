<?php
// Receive seqr-gateway's webhooks in PHP and verify them with the Standard
// Webhooks library (composer require standard-webhooks/standard-webhooks).
// Serve this file at [webhooks] url, with WEBHOOK_SECRET set to [webhooks]
// secret (whsec_...).
require __DIR__ . '/vendor/autoload.php';

use StandardWebhooks\Webhook;

$body = file_get_contents('php://input');
$headers = [
    'webhook-id' => $_SERVER['HTTP_WEBHOOK_ID'] ?? '',
    'webhook-timestamp' => $_SERVER['HTTP_WEBHOOK_TIMESTAMP'] ?? '',
    'webhook-signature' => $_SERVER['HTTP_WEBHOOK_SIGNATURE'] ?? '',
];
try {
    // Checks webhook-signature against webhook-id, webhook-timestamp (at most
    // 5 minutes old) and the exact bytes of the body.
    $event = (new Webhook(getenv('WEBHOOK_SECRET')))->verify($body, $headers);
} catch (Exception $e) {
    http_response_code(400);
    exit;
}
// At least once: a retry after a lost answer repeats an event with the same
// webhook-id ("evt_<id>"); remember the ids you handled (here: a database
// table with a unique key on it) and skip repeats.
if ($event['type'] === 'invoice.paid') {
    error_log("order {$event['data']['clientInvoiceId']} is paid: {$event['data']['totalAmount']} {$event['data']['currency']}");
}
http_response_code(204); // any 2xx ends the delivery; 410 disables this URL
