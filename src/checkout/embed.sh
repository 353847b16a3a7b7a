#!/bin/sh
# embed.sh OUT.c CSS JS — writes the payment page's stylesheet and script as
# C strings (checkout_css_text, checkout_js_text) for the gateway to serve
# under /pay/assets/. Used by Makefile.am and tests/fuzz/run.
set -e
out=$1 css=$2 js=$3
{
  echo '/* Generated from src/checkout/checkout.css and checkout.js by'
  echo ' * src/checkout/embed.sh; do not edit. */'
  for pair in "css:$css" "js:$js"; do
    name=${pair%%:*} file=${pair#*:}
    echo "const char checkout_${name}_text[] ="
    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$/\\n"/' "$file"
    echo ';'
  done
} > "$out.tmp"
mv "$out.tmp" "$out"
