/* Hostile and broken inputs, bad output paths, and the atomic write
 * guarantee. Every failure must be a clear one-line error naming the file,
 * never a crash or a leak (this suite also runs under ASan). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <webp/encode.h>
#include <zlib.h>
#ifdef HAVE_JPEG
#include <jpeglib.h>
#endif

#include "io/file.h"
#include "io/image.h"
#include "test_io_util.h"
#include "testutil.h"

static test_buf encode_to_buf(stdcpu_image_format f, const stdcpu_image *img, const stdcpu_write_opts *o)
{
    test_buf b;
    test_buf_init(&b);
    ck_assert_int_eq(stdcpu_image_encode(f, img, o, &b.data, &b.size, NULL), STDCPU_OK);
    b.cap = b.size;
    return b;
}

static test_buf small_anim(void)
{
    stdcpu_frames fr;
    ck_assert_int_eq(stdcpu_frames_alloc(&fr, 12, 10, 3, NULL), STDCPU_OK);
    for (int i = 0; i < 3; i++) {
        stdcpu_image f = test_pattern(12, 10, (unsigned)i * 3);
        memcpy(fr.rgb + (size_t)i * 12 * 10 * 3, f.rgb, 12 * 10 * 3);
        stdcpu_image_free(&f);
        fr.durations_ms[i] = 50;
    }
    test_buf b;
    test_buf_init(&b);
    stdcpu_write_opts o = {.webp_quality = 80};
    ck_assert_int_eq(stdcpu_frames_encode_webp(&fr, &o, &b.data, &b.size, NULL), STDCPU_OK);
    stdcpu_frames_free(&fr);
    return b;
}

#ifdef HAVE_JPEG
static test_buf small_jpeg(int progressive)
{
    stdcpu_image img = test_pattern(24, 16, 3);
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    unsigned char *mem = NULL;
    unsigned long size = 0;
    jpeg_mem_dest(&c, &mem, &size);
    c.image_width = 24;
    c.image_height = 16;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    if (progressive)
        jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = img.rgb + (size_t)c.next_scanline * 24 * 3;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    test_buf b;
    test_buf_init(&b);
    test_buf_append(&b, mem, size);
    free(mem);
    stdcpu_image_free(&img);
    return b;
}
#endif

/* Decodes every prefix data[0..n) for n = 0, step, 2*step, ... < size (plus
 * the last 16 prefixes): each must fail with a message naming the file; the
 * full file must decode. Returns how many prefixes were tried. */
static int check_truncations(const test_buf *b, size_t step, const char *name, int as_frames)
{
    int tried = 0;
    for (size_t n = 0; n <= b->size; n += (n + 16 >= b->size ? 1 : step)) {
        stdcpu_error err = {0};
        stdcpu_status st;
        uint8_t *copy = malloc(n ? n : 1); /* exact-size copy: ASan sees any over-read */
        memcpy(copy, b->data, n);
        if (as_frames) {
            stdcpu_frames fr;
            st = stdcpu_frames_read_memory(copy, n, name, NULL, &fr, &err);
            if (st == STDCPU_OK) {
                ck_assert_msg(n == b->size, "%s truncated to %zu of %zu bytes decoded", name, n, b->size);
                stdcpu_frames_free(&fr);
            } else {
                ck_assert_ptr_null(fr.rgb);
            }
        } else {
            stdcpu_image img;
            st = stdcpu_image_read_memory(copy, n, name, NULL, &img, &err);
            if (st == STDCPU_OK) {
                ck_assert_msg(n == b->size, "%s truncated to %zu of %zu bytes decoded", name, n, b->size);
                stdcpu_image_free(&img);
            } else {
                ck_assert_ptr_null(img.rgb);
            }
        }
        if (n == b->size)
            ck_assert_msg(st == STDCPU_OK, "%s: full file failed: %s", name, err.msg);
        else {
            ck_assert_msg(st == STDCPU_ERR_FORMAT, "%s at %zu: status %d: %s", name, n, st, err.msg);
            ck_assert_msg(!strncmp(err.msg, name, strlen(name)), "message without file name: %s", err.msg);
            ck_assert_ptr_null(strchr(err.msg, '\n'));
            /* Past the magic bytes the cause must be named as truncation. */
            if (n >= 16)
                ck_assert_msg(strstr(err.msg, "truncated") != NULL, "%s at %zu of %zu: %s", name, n, b->size,
                              err.msg);
        }
        free(copy);
        tried++;
    }
    return tried;
}

START_TEST(test_truncated_synthetic_every_offset)
{
    stdcpu_image img = test_pattern(20, 14, 1);
    test_buf png = encode_to_buf(STDCPU_FORMAT_PNG, &img, NULL);
    stdcpu_write_opts lossless = {.webp_lossless = 1}, lossy = {.webp_quality = 75};
    test_buf wl = encode_to_buf(STDCPU_FORMAT_WEBP, &img, &lossless);
    test_buf wq = encode_to_buf(STDCPU_FORMAT_WEBP, &img, &lossy);
    test_buf anim = small_anim();
    check_truncations(&png, 1, "t.png", 0);
    check_truncations(&wl, 1, "t.webp", 0);
    check_truncations(&wq, 1, "q.webp", 0);
    check_truncations(&anim, 1, "a.webp", 1);
    check_truncations(&anim, 1, "a.webp", 0);
#ifdef HAVE_JPEG
    for (int prog = 0; prog < 2; prog++) {
        test_buf jpg = small_jpeg(prog);
        check_truncations(&jpg, 1, "t.jpg", 0);
        free(jpg.data);
    }
#endif
    free(png.data);
    free(wl.data);
    free(wq.data);
    free(anim.data);
    stdcpu_image_free(&img);
}
END_TEST

START_TEST(test_truncated_real_files_stride)
{
    static const char *files[] = {"data/photos/chelsea.png", "data/styles/starry_night.jpg",
                                  "data/video/coffee_pan8.webp"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        const char *p = stdcpu_test_shared(files[i]);
        if (!p)
            return; /* ../shared absent: nothing to check */
#ifndef HAVE_JPEG
        if (strstr(files[i], ".jpg"))
            continue;
#endif
        test_buf b = test_read_whole(p);
        int tried = check_truncations(&b, b.size / 40 + 1, files[i], strstr(files[i], ".webp") != NULL);
        ck_assert_int_ge(tried, 40);
        free(b.data);
    }
}
END_TEST

/* Random byte corruption: any outcome but a crash, leak or half-filled
 * result is fine. */
START_TEST(test_corrupt_bytes_never_crash)
{
    stdcpu_image img = test_pattern(16, 16, 2);
    stdcpu_write_opts lossless = {.webp_lossless = 1};
    test_buf inputs[3] = {encode_to_buf(STDCPU_FORMAT_PNG, &img, NULL),
                          encode_to_buf(STDCPU_FORMAT_WEBP, &img, &lossless), small_anim()};
    stdcpu_test_rng rng = {777};
    for (int k = 0; k < 3; k++)
        for (int iter = 0; iter < 300; iter++) {
            uint8_t *copy = malloc(inputs[k].size);
            memcpy(copy, inputs[k].data, inputs[k].size);
            int flips = 1 + (int)(stdcpu_test_next(&rng) % 4);
            for (int f = 0; f < flips; f++)
                copy[stdcpu_test_next(&rng) % inputs[k].size] ^= (uint8_t)(1u << (stdcpu_test_next(&rng) % 8));
            stdcpu_frames fr;
            stdcpu_error err = {0};
            if (stdcpu_frames_read_memory(copy, inputs[k].size, "c", NULL, &fr, &err) == STDCPU_OK) {
                ck_assert(fr.count >= 1 && fr.width >= 1 && fr.rgb);
                stdcpu_frames_free(&fr);
            } else {
                ck_assert_ptr_null(fr.rgb);
                ck_assert(err.msg[0] == 'c' && err.msg[1] == ':');
            }
            free(copy);
        }
    for (int k = 0; k < 3; k++)
        free(inputs[k].data);
    stdcpu_image_free(&img);
}
END_TEST

START_TEST(test_wrong_magic_and_empty)
{
    stdcpu_image img;
    stdcpu_error err = {0};
    const uint8_t text[] = "hello, this is not an image";
    ck_assert_int_eq(stdcpu_image_read_memory(text, sizeof text, "x.png", NULL, &img, &err), STDCPU_ERR_FORMAT);
    ck_assert_str_eq(err.msg, "x.png: not a PNG, JPEG or WebP file (unrecognised magic bytes)");
    ck_assert_ptr_null(img.rgb);
    const uint8_t gif[] = "GIF89a\x01\x00\x01\x00";
    ck_assert_int_eq(stdcpu_image_read_memory(gif, sizeof gif, "x.gif", NULL, &img, &err), STDCPU_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(err.msg, "GIF"));
    ck_assert_int_eq(stdcpu_image_read_memory(text, 0, "e.png", NULL, &img, &err), STDCPU_ERR_FORMAT);
    ck_assert_str_eq(err.msg, "e.png: empty file");
    ck_assert_int_eq(stdcpu_image_read_memory(NULL, 0, NULL, NULL, &img, &err), STDCPU_ERR_FORMAT);
    ck_assert_str_eq(err.msg, "<memory>: empty file");

    char path[4096];
    snprintf(path, sizeof path, "%s/empty.png", stdcpu_test_tmpdir());
    test_write_whole(path, "", 0);
    ck_assert_int_eq(stdcpu_image_read(path, NULL, &img, &err), STDCPU_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "empty.png: empty file"));
    ck_assert_int_eq(stdcpu_image_read(stdcpu_test_tmpdir(), NULL, &img, &err), STDCPU_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "is a directory"));
    snprintf(path, sizeof path, "%s/no-such-file.png", stdcpu_test_tmpdir());
    ck_assert_int_eq(stdcpu_image_read(path, NULL, &img, &err), STDCPU_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "no-such-file.png: cannot open"));
    stdcpu_frames fr;
    ck_assert_int_eq(stdcpu_frames_read(path, NULL, &fr, &err), STDCPU_ERR_NOT_FOUND);
    ck_assert_ptr_null(fr.rgb);
    ck_assert_int_eq(stdcpu_image_read("", NULL, &img, &err), STDCPU_ERR_INVALID_ARG);
    /* File-size limit. */
    stdcpu_image pat = test_pattern(8, 8, 0);
    snprintf(path, sizeof path, "%s/small.png", stdcpu_test_tmpdir());
    ck_assert_int_eq(stdcpu_image_write(path, &pat, NULL, NULL), STDCPU_OK);
    stdcpu_io_limits tiny = {.max_file_bytes = 16};
    ck_assert_int_eq(stdcpu_image_read(path, &tiny, &img, &err), STDCPU_ERR_LIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "over the limit"));
    stdcpu_image_free(&pat);
}
END_TEST

/* Rewrites a PNG's IHDR width/height (and its CRC). */
static void patch_ihdr(test_buf *png, uint32_t w, uint32_t h)
{
    uint8_t *ihdr = png->data + 8; /* length(4) "IHDR"(4) data(13) crc(4) */
    ck_assert(!memcmp(ihdr + 4, "IHDR", 4));
    for (int i = 0; i < 4; i++) {
        ihdr[8 + i] = (uint8_t)(w >> (24 - 8 * i));
        ihdr[12 + i] = (uint8_t)(h >> (24 - 8 * i));
    }
    uint32_t crc = (uint32_t)crc32(0, ihdr + 4, 17);
    for (int i = 0; i < 4; i++)
        ihdr[21 + i] = (uint8_t)(crc >> (24 - 8 * i));
}

START_TEST(test_absurd_dimensions_refused_from_header)
{
    stdcpu_image small = test_pattern(16, 16, 4);
    stdcpu_image img;
    stdcpu_error err = {0};
    /* 100000 x 100000 = 10^10 pixels (30 GB of RGB): refused by the default
     * 64 Mpx limit before any allocation (ASan would flag a huge malloc). */
    test_buf png = encode_to_buf(STDCPU_FORMAT_PNG, &small, NULL);
    patch_ihdr(&png, 100000, 100000);
    ck_assert_int_eq(stdcpu_image_read_memory(png.data, png.size, "huge.png", NULL, &img, &err), STDCPU_ERR_LIMIT);
    ck_assert_str_eq(err.msg, "huge.png: PNG is 100000x100000 pixels, over the limit of 67108864 pixels");
    ck_assert_ptr_null(img.rgb);
    patch_ihdr(&png, 0x7fffffff, 1);
    ck_assert_int_eq(stdcpu_image_read_memory(png.data, png.size, "wide.png", NULL, &img, &err), STDCPU_ERR_LIMIT);
    patch_ihdr(&png, 0, 16);
    ck_assert_int_eq(stdcpu_image_read_memory(png.data, png.size, "zero.png", NULL, &img, &err), STDCPU_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err.msg, "zero.png: corrupt PNG (libpng: "));
    /* A configured limit below the real size. */
    patch_ihdr(&png, 16, 16);
    stdcpu_io_limits lim = {.max_pixels = 255};
    ck_assert_int_eq(stdcpu_image_read_memory(png.data, png.size, "p.png", &lim, &img, &err), STDCPU_ERR_LIMIT);
    lim.max_pixels = 256;
    ck_assert_int_eq(stdcpu_image_read_memory(png.data, png.size, "p.png", &lim, &img, &err), STDCPU_OK);
    stdcpu_image_free(&img);
    free(png.data);

    stdcpu_write_opts lossless = {.webp_lossless = 1};
    test_buf webp = encode_to_buf(STDCPU_FORMAT_WEBP, &small, &lossless);
    lim.max_pixels = 255;
    ck_assert_int_eq(stdcpu_image_read_memory(webp.data, webp.size, "p.webp", &lim, &img, &err), STDCPU_ERR_LIMIT);
    free(webp.data);

    /* Animated WebP: patch the VP8X canvas to 16384 x 16384 (268 Mpx). */
    test_buf anim = small_anim();
    ck_assert(!memcmp(anim.data + 12, "VP8X", 4));
    uint8_t *canvas = anim.data + 12 + 8 + 4; /* 24-bit width-1, height-1 */
    canvas[0] = 0xff;
    canvas[1] = 0x3f;
    canvas[2] = 0;
    canvas[3] = 0xff;
    canvas[4] = 0x3f;
    canvas[5] = 0;
    stdcpu_frames fr;
    ck_assert_int_eq(stdcpu_frames_read_memory(anim.data, anim.size, "big.webp", NULL, &fr, &err),
                     STDCPU_ERR_LIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "16384x16384"));
    ck_assert_ptr_null(fr.rgb);
    free(anim.data);
    anim = small_anim();
    stdcpu_io_limits two = {.max_frames = 2};
    ck_assert_int_eq(stdcpu_frames_read_memory(anim.data, anim.size, "a.webp", &two, &fr, &err), STDCPU_ERR_LIMIT);
    ck_assert_str_eq(err.msg, "a.webp: animation has 3 frames, over the limit of 2");
    stdcpu_io_limits total = {.max_total_pixels = 3 * 12 * 10 - 1}; /* 3 frames of 12x10 */
    ck_assert_int_eq(stdcpu_frames_read_memory(anim.data, anim.size, "a.webp", &total, &fr, &err), STDCPU_ERR_LIMIT);
    ck_assert_str_eq(err.msg, "a.webp: animation of 3 frames of 12x10 is over the limit of 359 pixels");
    total.max_total_pixels++;
    ck_assert_int_eq(stdcpu_frames_read_memory(anim.data, anim.size, "a.webp", &total, &fr, &err), STDCPU_OK);
    stdcpu_frames_free(&fr);
    free(anim.data);
#ifdef HAVE_JPEG
    test_buf jpg = small_jpeg(0);
    ck_assert_int_eq(stdcpu_image_read_memory(jpg.data, jpg.size, "p.jpg", &lim, &img, &err), STDCPU_ERR_LIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "p.jpg: JPEG is 24x16 pixels"));
    free(jpg.data);
#endif
    stdcpu_image_free(&small);
}
END_TEST

/* Names in a folder other than "." and "..", sorted into one string. */
static void list_dir(const char *dir, char *out, size_t cap)
{
    out[0] = '\0';
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            strncat(out, e->d_name, cap - strlen(out) - 2);
            strcat(out, " ");
        }
    closedir(d);
}

static void make_dir(char *path, size_t cap, const char *name)
{
    snprintf(path, cap, "%s/%s", stdcpu_test_tmpdir(), name);
    ck_assert_int_eq(mkdir(path, 0755), 0);
}

START_TEST(test_atomic_write_failure_leaves_nothing)
{
    char dir[4096], path[4200], names[4096];
    make_dir(dir, sizeof dir, "atomic");
    stdcpu_image img = test_pattern(40, 30, 6);
    stdcpu_error err = {0};
    /* A fresh name: the failed write leaves no file at all. */
    snprintf(path, sizeof path, "%s/new.png", dir);
    stdcpu_write_opts fail = {.test_fail_after_bytes = 100};
    ck_assert_int_eq(stdcpu_image_write(path, &img, &fail, &err), STDCPU_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "new.png: write failed"));
    list_dir(dir, names, sizeof names);
    ck_assert_str_eq(names, "");
    /* An existing output stays byte-identical after failed writes. */
    snprintf(path, sizeof path, "%s/keep.webp", dir);
    test_write_whole(path, "old contents", 12);
    fail.webp_lossless = 1;
    ck_assert_int_eq(stdcpu_image_write(path, &img, &fail, &err), STDCPU_ERR_IO);
    stdcpu_frames fr = {.width = 40, .height = 30, .count = 1, .rgb = img.rgb};
    ck_assert_int_eq(stdcpu_frames_write(path, &fr, &fail, &err), STDCPU_ERR_IO);
    stdcpu_image huge = {20000, 1, img.rgb}; /* too wide for WebP: fails while encoding */
    ck_assert_int_eq(stdcpu_image_write(path, &huge, NULL, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "keep.webp: WebP cannot hold"));
    test_buf kept = test_read_whole(path);
    ck_assert_uint_eq(kept.size, 12);
    ck_assert_mem_eq(kept.data, "old contents", 12);
    free(kept.data);
    list_dir(dir, names, sizeof names);
    ck_assert_str_eq(names, "keep.webp ");
    /* Then a successful write replaces it. */
    ck_assert_int_eq(stdcpu_image_write(path, &img, NULL, &err), STDCPU_OK);
    list_dir(dir, names, sizeof names);
    ck_assert_str_eq(names, "keep.webp ");
    stdcpu_image back;
    ck_assert_int_eq(stdcpu_image_read(path, NULL, &back, &err), STDCPU_OK);
    ck_assert_int_eq(back.width, 40);
    stdcpu_image_free(&back);

    /* The writer API directly: abort removes the temporary file; commit
     * replaces the target only at the end. */
    stdcpu_atomic_file *f;
    snprintf(path, sizeof path, "%s/raw.bin", dir);
    test_write_whole(path, "v1", 2);
    ck_assert_int_eq(stdcpu_atomic_open(path, &f, &err), STDCPU_OK);
    ck_assert_int_eq(stdcpu_atomic_write(f, "version two", 11, &err), STDCPU_OK);
    list_dir(dir, names, sizeof names);
    ck_assert_msg(strstr(names, ".raw.bin.") && strstr(names, ".tmp "), "temporary file not beside target: %s",
                  names);
    kept = test_read_whole(path);
    ck_assert_uint_eq(kept.size, 2); /* not replaced yet */
    free(kept.data);
    stdcpu_atomic_abort(f);
    list_dir(dir, names, sizeof names);
    ck_assert_msg(!strstr(names, ".tmp"), "temporary file left: %s", names);
    ck_assert_int_eq(stdcpu_atomic_open(path, &f, &err), STDCPU_OK);
    ck_assert_int_eq(stdcpu_atomic_write(f, "version two", 11, &err), STDCPU_OK);
    ck_assert_int_eq(stdcpu_atomic_commit(f, &err), STDCPU_OK);
    kept = test_read_whole(path);
    ck_assert_uint_eq(kept.size, 11);
    free(kept.data);
    list_dir(dir, names, sizeof names);
    ck_assert_msg(!strstr(names, ".tmp"), "temporary file left: %s", names);
    stdcpu_image_free(&img);
}
END_TEST

START_TEST(test_bad_output_paths)
{
    stdcpu_image img = test_pattern(8, 8, 7);
    stdcpu_error err = {0};
    char path[4200], dir[4096];
    snprintf(path, sizeof path, "%s/no/such/folder/out.png", stdcpu_test_tmpdir());
    ck_assert_int_eq(stdcpu_image_write(path, &img, NULL, &err), STDCPU_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "out.png: cannot create output file in its folder"));
    snprintf(path, sizeof path, "%s/out.jpg", stdcpu_test_tmpdir());
    ck_assert_int_eq(stdcpu_image_write(path, &img, NULL, &err), STDCPU_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(err.msg, "must end in .png or .webp"));
    ck_assert_int_eq(stdcpu_image_write(NULL, &img, NULL, &err), STDCPU_ERR_INVALID_ARG);
    snprintf(path, sizeof path, "%s/x.png", stdcpu_test_tmpdir());
    stdcpu_image none = {0};
    ck_assert_int_eq(stdcpu_image_write(path, &none, NULL, &err), STDCPU_ERR_INVALID_ARG);
    /* A read-only folder (meaningless as root, who may write anyway). */
    if (geteuid() != 0) {
        make_dir(dir, sizeof dir, "readonly");
        ck_assert_int_eq(chmod(dir, 0555), 0);
        snprintf(path, sizeof path, "%s/out.webp", dir);
        ck_assert_int_eq(stdcpu_image_write(path, &img, NULL, &err), STDCPU_ERR_IO);
        ck_assert_ptr_nonnull(strstr(err.msg, "Permission denied"));
        chmod(dir, 0755);
    }
    /* The output name is an existing folder: rename fails, nothing left. */
    make_dir(dir, sizeof dir, "taken.png");
    ck_assert_int_eq(stdcpu_image_write(dir, &img, NULL, &err), STDCPU_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot rename into place"));
    char names[4096];
    list_dir(stdcpu_test_tmpdir(), names, sizeof names);
    ck_assert_msg(!strstr(names, ".tmp"), "temporary file left: %s", names);
    stdcpu_image_free(&img);
}
END_TEST

START_TEST(test_input_never_modified)
{
    char dir[4096], in[4200], out[4200];
    make_dir(dir, sizeof dir, "input");
    snprintf(in, sizeof in, "%s/in.png", dir);
    snprintf(out, sizeof out, "%s/out.webp", dir);
    stdcpu_image img = test_pattern(30, 20, 8);
    ck_assert_int_eq(stdcpu_image_write(in, &img, NULL, NULL), STDCPU_OK);
    ck_assert_int_eq(chmod(in, 0444), 0);
    struct stat before, after;
    ck_assert_int_eq(stat(in, &before), 0);
    test_buf bytes = test_read_whole(in);
    stdcpu_image r;
    ck_assert_int_eq(stdcpu_image_read(in, NULL, &r, NULL), STDCPU_OK);
    stdcpu_frames fr;
    ck_assert_int_eq(stdcpu_frames_read(in, NULL, &fr, NULL), STDCPU_OK);
    ck_assert_int_eq(stdcpu_image_write(out, &r, NULL, NULL), STDCPU_OK);
    ck_assert_int_eq(stat(in, &after), 0);
    test_buf again = test_read_whole(in);
    ck_assert_uint_eq(again.size, bytes.size);
    ck_assert_mem_eq(again.data, bytes.data, bytes.size);
    ck_assert(before.st_mtime == after.st_mtime && before.st_ino == after.st_ino);
    ck_assert_int_eq(after.st_mode & 0777, 0444);
    free(bytes.data);
    free(again.data);
    stdcpu_frames_free(&fr);
    stdcpu_image_free(&r);
    stdcpu_image_free(&img);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("io_errors");
    TCase *tc = tcase_create("hostile");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_truncated_synthetic_every_offset);
    tcase_add_test(tc, test_truncated_real_files_stride);
    tcase_add_test(tc, test_corrupt_bytes_never_crash);
    tcase_add_test(tc, test_wrong_magic_and_empty);
    tcase_add_test(tc, test_absurd_dimensions_refused_from_header);
    suite_add_tcase(s, tc);
    TCase *out = tcase_create("output");
    tcase_add_test(out, test_atomic_write_failure_leaves_nothing);
    tcase_add_test(out, test_bad_output_paths);
    tcase_add_test(out, test_input_never_modified);
    suite_add_tcase(s, out);
    return stdcpu_test_run(s);
}
