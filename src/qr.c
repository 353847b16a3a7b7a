/* qr.c — QR code rendering; see qr.h. */
#include "qr.h"

#include <libxml/tree.h>
#include <png.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void qr_options_default(qr_options *o, const char *format)
{
    o->size = 8;
    o->margin = format && strcmp(format, "txt") == 0 ? 2 : 4;
    o->invert = false;
}

static bool qr_parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

bool qr_options_parse(qr_options *o, const char *size, const char *margin, char *msg, size_t msglen)
{
    if (size != NULL && !qr_parse_int(size, 1, 40, &o->size)) {
        snprintf(msg, msglen, "size must be a whole number from 1 to 40");
        return false;
    }
    if (margin != NULL && !qr_parse_int(margin, 0, 16, &o->margin)) {
        snprintf(msg, msglen, "margin must be a whole number from 0 to 16");
        return false;
    }
    return true;
}

const char *qr_strerror(qr_err e)
{
    switch (e) {
    case QR_OK:
        return "ok";
    case QR_BAD_FORMAT:
        return "unknown QR format (use svg, png or txt)";
    case QR_ENCODE_FAILED:
        return "the text could not be encoded as a QR code";
    case QR_RENDER_FAILED:
        return "rendering the QR code failed";
    }
    return "QR error";
}

/* Module at (x, y) including the quiet zone; true = dark. */
static bool qr_dark(const QRcode *q, int margin, int x, int y)
{
    x -= margin;
    y -= margin;
    if (x < 0 || y < 0 || x >= q->width || y >= q->width)
        return false;
    return (q->data[y * q->width + x] & 1) != 0;
}

static void qr_render_txt(const QRcode *q, const qr_options *o, buf *out)
{
    /* Upper half block, lower half block, full block, space. */
    static const char *const upper = "\xe2\x96\x80", *const lower = "\xe2\x96\x84",
                             *const full = "\xe2\x96\x88";
    int n = q->width + 2 * o->margin;
    for (int y = 0; y < n; y += 2) {
        for (int x = 0; x < n; x++) {
            /* Draw a block where a module is light (or dark when inverted); a
             * half row past the bottom counts as quiet zone. */
            bool top = qr_dark(q, o->margin, x, y) == o->invert;
            bool bottom = y + 1 < n ? qr_dark(q, o->margin, x, y + 1) == o->invert : !o->invert;
            if (top && bottom)
                buf_puts(out, full);
            else if (top)
                buf_puts(out, upper);
            else if (bottom)
                buf_puts(out, lower);
            else
                buf_putc(out, ' ');
        }
        buf_putc(out, '\n');
    }
}

static void qr_render_svg(const QRcode *q, const qr_options *o, buf *out)
{
    int n = q->width + 2 * o->margin;
    char num[64];
    xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNodePtr svg = xmlNewNode(NULL, BAD_CAST "svg");
    xmlDocSetRootElement(doc, svg);
    xmlNsPtr ns = xmlNewNs(svg, BAD_CAST "http://www.w3.org/2000/svg", NULL);
    xmlSetNs(svg, ns);
    snprintf(num, sizeof num, "0 0 %d %d", n, n);
    xmlNewProp(svg, BAD_CAST "viewBox", BAD_CAST num);
    snprintf(num, sizeof num, "%d", n * o->size);
    xmlNewProp(svg, BAD_CAST "width", BAD_CAST num);
    xmlNewProp(svg, BAD_CAST "height", BAD_CAST num);
    xmlNewProp(svg, BAD_CAST "shape-rendering", BAD_CAST "crispEdges");
    xmlNodePtr bg = xmlNewChild(svg, ns, BAD_CAST "rect", NULL);
    xmlNewProp(bg, BAD_CAST "width", BAD_CAST "100%");
    xmlNewProp(bg, BAD_CAST "height", BAD_CAST "100%");
    xmlNewProp(bg, BAD_CAST "fill", BAD_CAST "#ffffff");
    buf d = BUF_INIT;
    for (int y = 0; y < q->width; y++)
        for (int x = 0; x < q->width; x++)
            if (q->data[y * q->width + x] & 1)
                buf_printf(&d, "M%d %dh1v1h-1z", x + o->margin, y + o->margin);
    xmlNodePtr path = xmlNewChild(svg, ns, BAD_CAST "path", NULL);
    xmlNewProp(path, BAD_CAST "d", BAD_CAST buf_cstr(&d));
    xmlNewProp(path, BAD_CAST "fill", BAD_CAST "#000000");
    buf_free(&d);
    xmlChar *mem = NULL;
    int size = 0;
    xmlDocDumpMemoryEnc(doc, &mem, &size, "UTF-8");
    if (mem != NULL)
        buf_append(out, mem, (size_t)size);
    xmlFree(mem);
    xmlFreeDoc(doc);
}

static void qr_png_write(png_structp png, png_bytep data, png_size_t len)
{
    buf_append(png_get_io_ptr(png), data, len);
}

static void qr_png_flush(png_structp png)
{
    (void)png;
}

static qr_err qr_render_png(const QRcode *q, const qr_options *o, buf *out)
{
    int n = (q->width + 2 * o->margin) * o->size;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    unsigned char *row = NULL;
    qr_err result = QR_RENDER_FAILED;
    if (png == NULL || info == NULL)
        goto cleanup;
    row = malloc((size_t)n);
    if (row == NULL)
        goto cleanup;
    if (setjmp(png_jmpbuf(png)))
        goto cleanup;
    png_set_write_fn(png, out, qr_png_write, qr_png_flush);
    png_set_IHDR(png, info, (png_uint_32)n, (png_uint_32)n, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < n; y++) {
        for (int x = 0; x < n; x++)
            row[x] = qr_dark(q, o->margin, x / o->size, y / o->size) ? 0 : 255;
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    result = QR_OK;
cleanup:
    free(row);
    if (png != NULL)
        png_destroy_write_struct(&png, info ? &info : NULL);
    return result;
}

qr_err qr_render(const char *text, const char *format, const qr_options *o, buf *out,
                 const char **content_type)
{
    if (strcmp(format, "svg") != 0 && strcmp(format, "png") != 0 && strcmp(format, "txt") != 0)
        return QR_BAD_FORMAT;
    QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (q == NULL)
        return QR_ENCODE_FAILED;
    qr_err e = QR_OK;
    if (strcmp(format, "svg") == 0) {
        qr_render_svg(q, o, out);
        *content_type = "image/svg+xml";
    } else if (strcmp(format, "png") == 0) {
        e = qr_render_png(q, o, out);
        *content_type = "image/png";
    } else {
        qr_render_txt(q, o, out);
        *content_type = "text/plain; charset=utf-8";
    }
    QRcode_free(q);
    return e;
}
