<?php
// seqr-sim against PHP's SoapClient (what the official SEQR WooCommerce and
// PrestaShop plugins use): sendInvoice -> buyer pays -> getPaymentStatus.
// Usage: php sim_php_test.php http://127.0.0.1:PORT   (exit 0 = passed)
$base = $argv[1];
function check($cond, $what) { if (!$cond) { fwrite(STDERR, "php: FAILED: $what\n"); exit(1); } }

$client = new SoapClient($base . '/soap?wsdl', ['trace' => 1, 'exceptions' => true, 'cache_wsdl' => WSDL_CACHE_NONE]);
$context = [
    'channel' => 'WS', 'clientId' => 'Company Name', 'clientReference' => 'php plugin 1.0',
    'clientRequestTimeout' => 0,
    'initiatorPrincipalId' => ['id' => 'seqr-sim-terminal', 'type' => 'TERMINALID'],
    'password' => 'terminal-password',
];
$invoice = [
    'paymentMode' => 'IMMEDIATE_DEBIT', 'acknowledgmentMode' => 'NO_ACKNOWLEDGMENT',
    'issueDate' => date('c'), 'title' => 'WooCommerce order 42',
    'invoiceRows' => ['invoiceRow' => [[
        'itemDescription' => 'Mug', 'itemQuantity' => 1,
        'itemTotalAmount' => ['value' => '99.00', 'currency' => 'SEK'],
    ]]],
    'totalAmount' => ['value' => '99.00', 'currency' => 'SEK'],
    'backURL' => 'https://shop.example/back',
];
$sent = $client->sendInvoice(['context' => $context, 'invoice' => $invoice])->return;
check($sent->resultCode == 0, 'sendInvoice resultCode ' . $sent->resultCode);
$ref = $sent->invoiceReference;
check($sent->invoiceQRCode === "HTTP://SEQR.SE/R$ref", 'invoiceQRCode');

$st = $client->getPaymentStatus(['context' => $context, 'invoiceReference' => $ref, 'invoiceVersion' => 0])->return;
check($st->status === 'ISSUED', 'status before paying: ' . $st->status);

$pay = stream_context_create(['http' => ['method' => 'POST', 'content' => '']]);
$paid = json_decode(file_get_contents("$base/sim/invoices/$ref/pay", false, $pay), true);
check($paid['status'] === 'PAID', 'sim pay');

$st = $client->getPaymentStatus(['context' => $context, 'invoiceReference' => $ref, 'invoiceVersion' => $st->version])->return;
check($st->status === 'PAID', 'status after paying: ' . $st->status);
check(strlen($st->ersReference) === 25, 'ersReference');
$r = $client->submitPaymentReceipt(['context' => $context, 'ersReference' => $st->ersReference,
    'receiptDocument' => ['mimeType' => 'text/html', 'receiptData' => '<html>Thanks</html>', 'receiptType' => 'PAYMENT_RECEIPT']])->return;
check($r->resultCode == 0, 'submitPaymentReceipt ' . $r->resultCode);
echo "php: sendInvoice, getPaymentStatus, submitPaymentReceipt ok for $ref\n";
