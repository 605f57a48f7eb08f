/* The generated Unicode and HTML tables (unicode_tables.c,
 * unicode_html_tables.c, unicode_fix_tables.c, written by tools/gen/gen_unicode_tables.py from
 * Python's unicodedata / str methods / html module). Internal to
 * nn/unicode*.c: use the functions of nn/unicode.h instead. */
#ifndef STDCPU_NN_UNICODE_TABLES_H
#define STDCPU_NN_UNICODE_TABLES_H

#include <stddef.h>
#include <stdint.h>

typedef struct stdcpu_unicode_range {
    uint32_t lo, hi; /* inclusive */
} stdcpu_unicode_range;

/* Code points first + k*stride (k < count) lowercase to themselves + delta. */
typedef struct stdcpu_unicode_lower_run {
    uint32_t first;
    uint16_t count;
    uint8_t stride;
    int32_t delta;
} stdcpu_unicode_lower_run;

typedef struct stdcpu_unicode_lower_multi {
    uint32_t cp;
    uint8_t n;
    uint32_t lower[3];
} stdcpu_unicode_lower_multi;

typedef struct stdcpu_html_entity {
    const char *name;  /* ASCII, with the ';' when the entry has one */
    uint32_t cp[2];    /* cp[1] == 0: one code point */
} stdcpu_html_entity;

/* One level of canonical decomposition; second == 0 for a singleton. */
typedef struct stdcpu_unicode_decomp {
    uint32_t cp, first, second;
    uint8_t composes; /* primary composite: NFC recombines first + second */
} stdcpu_unicode_decomp;

typedef struct stdcpu_unicode_ccc_range {
    uint32_t lo, hi; /* inclusive */
    uint8_t ccc;
} stdcpu_unicode_ccc_range;

typedef struct stdcpu_unicode_map2 {
    uint32_t cp;
    uint32_t to[2]; /* to[1] == 0: one code point */
} stdcpu_unicode_map2;

extern const char stdcpu_unicode_version[];
extern const stdcpu_unicode_range stdcpu_unicode_letter[];
extern const size_t stdcpu_unicode_letter_count;
extern const stdcpu_unicode_range stdcpu_unicode_number[];
extern const size_t stdcpu_unicode_number_count;
extern const stdcpu_unicode_range stdcpu_unicode_space[];
extern const size_t stdcpu_unicode_space_count;
extern const stdcpu_unicode_range stdcpu_unicode_case_ignorable[];
extern const size_t stdcpu_unicode_case_ignorable_count;
extern const stdcpu_unicode_range stdcpu_unicode_cased[];
extern const size_t stdcpu_unicode_cased_count;
extern const stdcpu_unicode_lower_run stdcpu_unicode_lower_runs[];
extern const size_t stdcpu_unicode_lower_runs_count;
extern const stdcpu_unicode_lower_multi stdcpu_unicode_lower_multis[];
extern const size_t stdcpu_unicode_lower_multis_count;
extern const uint32_t stdcpu_unicode_split_unmatched[];
extern const size_t stdcpu_unicode_split_unmatched_count;
extern const uint32_t stdcpu_unicode_contraction_s[];
extern const size_t stdcpu_unicode_contraction_s_count;

extern const stdcpu_unicode_decomp stdcpu_unicode_decomps[];
extern const size_t stdcpu_unicode_decomps_count;
extern const uint16_t stdcpu_unicode_compose_index[];
extern const size_t stdcpu_unicode_compose_index_count;
extern const stdcpu_unicode_ccc_range stdcpu_unicode_ccc_ranges[];
extern const size_t stdcpu_unicode_ccc_ranges_count;
extern const uint32_t stdcpu_unicode_nfc_min;
extern const uint32_t stdcpu_unicode_compose_second_min;
extern const stdcpu_unicode_map2 stdcpu_unicode_width_map[];
extern const size_t stdcpu_unicode_width_map_count;
extern const uint16_t stdcpu_unicode_c1_map[32];

extern const stdcpu_html_entity stdcpu_html_entities[];
extern const size_t stdcpu_html_entities_count;
extern const uint32_t stdcpu_html_invalid_charrefs[][2];
extern const size_t stdcpu_html_invalid_charrefs_count;
extern const stdcpu_unicode_range stdcpu_html_invalid_codepoints[];
extern const size_t stdcpu_html_invalid_codepoints_count;

#endif
