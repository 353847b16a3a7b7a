/* qr.h — QR codes for invoices and terminals, rendered with libqrencode as
 * SVG (libxml2 tree), PNG (libpng) or UTF-8 half-block text that a phone can
 * scan straight from a terminal.
 *
 * Text output draws light modules as blocks (for the usual dark terminal
 * background); opts.invert draws dark modules instead. Output is appended to
 * a caller-owned buf; *content_type points to a static string. */
#ifndef SEQR_QR_H
#define SEQR_QR_H

#include <stdbool.h>

#include "buf.h"

typedef enum { QR_OK = 0, QR_BAD_FORMAT, QR_ENCODE_FAILED, QR_RENDER_FAILED } qr_err;

typedef struct {
    int size;    /* pixels per module (png, svg); 1..40 */
    int margin;  /* quiet zone in modules; 0..16 */
    bool invert; /* text only: draw dark modules as blocks */
} qr_options;

/* Defaults for a format ("svg", "png", "txt"): size 8, margin 4 (txt: 2). */
void qr_options_default(qr_options *o, const char *format);
/* Applies ?size= and ?margin= (either may be NULL). False with a message in
 * msg when a value is not a whole number in range. */
bool qr_options_parse(qr_options *o, const char *size, const char *margin, char *msg,
                      size_t msglen);

/* Renders text as a QR code (error correction M) in format. */
qr_err qr_render(const char *text, const char *format, const qr_options *o, buf *out,
                 const char **content_type);
const char *qr_strerror(qr_err e);

#endif
