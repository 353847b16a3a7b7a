<?php
// php_soapclient.php — the official shop plugins' way of polling, measured:
// a new PHP SoapClient per getPaymentStatus call (WSDL cached in memory, as
// PrestaShop's SeqrApi.php and seqr-webshop-api create one per request),
// calls one after another against the same simulator as the gateway.
// Prints one line of JSON with the CPU (user + sys) each call cost PHP.
// Usage: php php_soapclient.php http://127.0.0.1:PORT INVOICE_REFERENCE CALLS
[$_, $base, $ref, $calls] = $argv;
$calls = (int)$calls;
$context = [
    'channel' => 'WS', 'clientId' => 'Company Name', 'clientReference' => 'php plugin 1.0',
    'clientRequestTimeout' => 0,
    'initiatorPrincipalId' => ['id' => 'seqr-sim-terminal', 'type' => 'TERMINALID'],
    'password' => 'terminal-password',
];
$options = ['exceptions' => true, 'cache_wsdl' => WSDL_CACHE_MEMORY];
// The first client fetches the WSDL; the counted calls find it cached.
new SoapClient("$base/soap?wsdl", $options);
function cpu() { $r = getrusage(); return $r['ru_utime.tv_sec'] + $r['ru_stime.tv_sec'] +
    ($r['ru_utime.tv_usec'] + $r['ru_stime.tv_usec']) / 1e6; }
$errors = 0;
$c0 = cpu(); $t0 = microtime(true);
for ($i = 0; $i < $calls; $i++) {
    $client = new SoapClient("$base/soap?wsdl", $options);
    $st = $client->getPaymentStatus(['context' => $context, 'invoiceReference' => $ref,
                                     'invoiceVersion' => 0])->return;
    if ($st->resultCode != 0) $errors++;
}
$cpu = cpu() - $c0; $secs = microtime(true) - $t0;
printf("{\"calls\": %d, \"errors\": %d, \"seconds\": %.3f, \"cpu_us_per_call\": %.2f}\n",
       $calls, $errors, $secs, $cpu * 1e6 / $calls);
exit($errors == 0 ? 0 : 1);
