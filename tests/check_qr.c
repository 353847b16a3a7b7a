/* check_qr.c — QR output decodes back to its text: PNG straight through
 * zbarimg, the SVG and the terminal text form by rebuilding the module matrix
 * into a PGM image that zbarimg then reads. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qr.h"
#include "testutil.h"

#define QR_TEXT "HTTP://SEQR.SE/R1397222701693"

static char *decode_file(const char *path)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "zbarimg --quiet --raw '%s' 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    ck_assert_msg(p != NULL, "cannot run zbarimg (Debian package zbar-tools)");
    char line[512] = "";
    if (fgets(line, sizeof line, p) == NULL)
        line[0] = '\0';
    int rc = pclose(p);
    ck_assert_msg(rc == 0, "zbarimg found no code in %s (rc %d)", path, rc);
    line[strcspn(line, "\n")] = '\0';
    return strdup(line);
}

/* Writes a module matrix (1 = dark) as a PGM, scale pixels per module. */
static void write_pgm(const char *path, const unsigned char *m, int w, int h, int scale)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "P5\n%d %d\n255\n", w * scale, h * scale);
    for (int y = 0; y < h * scale; y++)
        for (int x = 0; x < w * scale; x++)
            fputc(m[(y / scale) * w + x / scale] ? 0 : 255, f);
    fclose(f);
}

static char *tmpfile_in(const char *name)
{
    static char path[600];
    char *d = tu_tempdir();
    snprintf(path, sizeof path, "%s/%s", d, name);
    free(d);
    return path;
}

START_TEST(png_decodes)
{
    qr_options o;
    qr_options_default(&o, "png");
    buf out = BUF_INIT;
    const char *type = NULL;
    ck_assert_int_eq(qr_render(QR_TEXT, "png", &o, &out, &type), QR_OK);
    ck_assert_str_eq(type, "image/png");
    ck_assert(memcmp(out.data, "\x89PNG", 4) == 0);
    char *path = tmpfile_in("qr.png");
    FILE *f = fopen(path, "wb");
    fwrite(out.data, 1, out.len, f);
    fclose(f);
    char *text = decode_file(path);
    ck_assert_str_eq(text, QR_TEXT);
    free(text);
    buf_free(&out);
}
END_TEST

START_TEST(txt_decodes)
{
    for (int inv = 0; inv < 2; inv++) {
        qr_options o;
        qr_options_default(&o, "txt");
        o.invert = inv == 1;
        buf out = BUF_INIT;
        const char *type = NULL;
        ck_assert_int_eq(qr_render(QR_TEXT, "txt", &o, &out, &type), QR_OK);
        /* Rebuild the matrix: each character is two modules stacked. */
        int w = 0, lines = 0;
        for (const char *p = out.data; *p; p++)
            if (*p == '\n')
                lines++;
        const char *first_nl = strchr(out.data, '\n');
        for (const char *p = out.data; p < first_nl;) {
            p += (*p == ' ') ? 1 : 3;
            w++;
        }
        int h = lines * 2;
        unsigned char *m = calloc((size_t)(w * h), 1);
        int x = 0, y = 0;
        for (const char *p = out.data; *p;) {
            if (*p == '\n') {
                x = 0;
                y += 2;
                p++;
                continue;
            }
            bool top = false, bottom = false; /* block drawn there */
            if (*p == ' ') {
                p++;
            } else {
                ck_assert(strncmp(p, "\xe2\x96", 2) == 0);
                top = p[2] == '\x80' || p[2] == '\x88';
                bottom = p[2] == '\x84' || p[2] == '\x88';
                p += 3;
            }
            /* Blocks are light modules unless inverted. */
            m[y * w + x] = top == o.invert;
            m[(y + 1) * w + x] = bottom == o.invert;
            x++;
        }
        char *path = tmpfile_in("qr.pgm");
        write_pgm(path, m, w, h, 6);
        char *text = decode_file(path);
        ck_assert_str_eq(text, QR_TEXT);
        free(text);
        free(m);
        buf_free(&out);
    }
}
END_TEST

START_TEST(svg_decodes)
{
    qr_options o;
    qr_options_default(&o, "svg");
    buf out = BUF_INIT;
    const char *type = NULL;
    ck_assert_int_eq(qr_render(QR_TEXT, "svg", &o, &out, &type), QR_OK);
    ck_assert_str_eq(type, "image/svg+xml");
    const char *vb = strstr(out.data, "viewBox=\"0 0 ");
    ck_assert_ptr_nonnull(vb);
    int n = atoi(vb + 13);
    ck_assert_int_gt(n, 20);
    unsigned char *m = calloc((size_t)(n * n), 1);
    const char *d = strstr(out.data, " d=\"");
    ck_assert_ptr_nonnull(d);
    for (const char *p = d + 4; *p == 'M';) {
        int x, y, used;
        ck_assert_int_eq(sscanf(p, "M%d %dh1v1h-1z%n", &x, &y, &used), 2);
        ck_assert(x >= 0 && x < n && y >= 0 && y < n);
        m[y * n + x] = 1;
        p += used;
    }
    char *path = tmpfile_in("svg.pgm");
    write_pgm(path, m, n, n, 6);
    char *text = decode_file(path);
    ck_assert_str_eq(text, QR_TEXT);
    free(text);
    free(m);
    buf_free(&out);
}
END_TEST

START_TEST(options)
{
    qr_options o;
    qr_options_default(&o, "png");
    char msg[128];
    ck_assert(qr_options_parse(&o, "3", "1", msg, sizeof msg));
    ck_assert_int_eq(o.size, 3);
    ck_assert_int_eq(o.margin, 1);
    ck_assert(!qr_options_parse(&o, "0", NULL, msg, sizeof msg));
    ck_assert(!qr_options_parse(&o, "41", NULL, msg, sizeof msg));
    ck_assert(!qr_options_parse(&o, NULL, "x", msg, sizeof msg));
    ck_assert(!qr_options_parse(&o, NULL, "17", msg, sizeof msg));
    buf out = BUF_INIT;
    const char *type;
    ck_assert_int_eq(qr_render(QR_TEXT, "gif", &o, &out, &type), QR_BAD_FORMAT);
    buf_free(&out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("qr");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, png_decodes);
    tcase_add_test(tc, txt_decodes);
    tcase_add_test(tc, svg_decodes);
    tcase_add_test(tc, options);
    suite_add_tcase(s, tc);
    return tu_run_suite(s);
}
