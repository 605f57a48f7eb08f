#!/usr/bin/env python3
"""Generate the Unicode and HTML-entity tables of the CLIP tokenizer.

Development-time only: the output is committed, nothing runs Python at run
time. Usage (from the repository root):

    python3 tools/gen/gen_unicode_tables.py src/nn

writes src/nn/unicode_tables.c, src/nn/unicode_html_tables.c and
src/nn/unicode_fix_tables.c (NFC and the ftfy subset). Every table
reproduces the behaviour of the Python the reference tokenizer runs on
(openai simple_tokenizer / HF CLIPTokenizer): unicodedata categories for
\\p{L} / \\p{N}, str.isspace() for \\s, str.lower() for lowercase (including
the multi-character results and the Final_Sigma rule, whose "cased" and
"case-ignorable" properties are measured through str.lower() itself), and
html.unescape's entity tables. The `regex` module (which the reference split
pattern uses) is consulted for the few characters its IGNORECASE matching
treats differently from the plain categories.
"""
import html
import html.entities
import os
import sys
import unicodedata

try:
    import regex
except ImportError:  # pragma: no cover
    regex = None

MAX_CP = 0x110000


def code_points():
    for cp in range(MAX_CP):
        if 0xD800 <= cp <= 0xDFFF:
            continue  # surrogates never occur in decoded text
        yield cp


def ranges_of(pred):
    """Sorted inclusive [lo, hi] ranges of the code points satisfying pred."""
    out = []
    for cp in code_points():
        if pred(cp):
            if out and out[-1][1] == cp - 1:
                out[-1][1] = cp
            else:
                out.append([cp, cp])
    return out


def emit_ranges(f, name, rngs, comment):
    f.write("/* %s (%d ranges) */\n" % (comment, len(rngs)))
    f.write("const stdcpu_unicode_range %s[] = {\n" % name)
    line = "   "
    for lo, hi in rngs:
        item = " {0x%X, 0x%X}," % (lo, hi)
        if len(line) + len(item) > 110:
            f.write(line + "\n")
            line = "   "
        line += item
    f.write(line + "\n};\n")
    f.write("const size_t %s_count = %d;\n\n" % (name, len(rngs)))


def is_final_sigma(s):
    return s.lower()[-1] == "\u03c2"


def lower_tables():
    """Simple (one code point) lowercase mappings as runs, plus the
    multi-code-point results of str.lower()."""
    singles = []
    multi = []
    for cp in code_points():
        if cp == 0x3A3:
            continue  # Σ: handled by the Final_Sigma rule in C (σ or ς)
        low = chr(cp).lower()
        if low == chr(cp):
            continue
        if len(low) == 1:
            singles.append((cp, ord(low) - cp))
        else:
            multi.append((cp, [ord(c) for c in low]))
    # Runs: code points first, first+stride, ... with the same delta.
    runs = []
    for cp, delta in singles:
        if runs:
            first, count, stride, d = runs[-1]
            last = first + (count - 1) * stride
            if d == delta and count == 1 and cp - first in (1, 2):
                runs[-1] = (first, 2, cp - first, d)
                continue
            if d == delta and count > 1 and cp - last == stride:
                runs[-1] = (first, count + 1, stride, d)
                continue
        runs.append((cp, 1, 1, delta))
    return runs, multi


def gen_unicode(path):
    letter = ranges_of(lambda cp: unicodedata.category(chr(cp))[0] == "L")
    number = ranges_of(lambda cp: unicodedata.category(chr(cp))[0] == "N")
    space = ranges_of(lambda cp: chr(cp).isspace())
    # Final_Sigma (CPython handle_capital_sigma): scanning from Σ, skip
    # case-ignorable characters, then look at one "cased" character.
    # T1 = final("A" c "Σ") = ignorable or cased; T2 = final(c "Σ") = cased
    # and not ignorable; so ignorable = T1 and not T2.
    ignorable = ranges_of(lambda cp: is_final_sigma("A" + chr(cp) + "\u03a3")
                          and not is_final_sigma(chr(cp) + "\u03a3"))
    cased = ranges_of(lambda cp: is_final_sigma(chr(cp) + "\u03a3"))
    runs, multi = lower_tables()
    assert all(len(m) <= 3 for _, m in multi)

    # Characters the reference split regex (regex module, IGNORECASE) matches
    # with none of its alternatives although they are neither space, letter
    # nor number: their case variants are letters (U+0345 -> iota), so the
    # negated class rejects them too. The reference silently drops them.
    unmatched = []
    s_fold = []
    if regex is not None:
        pl = regex.compile(r"[\p{L}]", regex.I)
        pn = regex.compile(r"[\p{N}]", regex.I)
        po = regex.compile(r"[^\s\p{L}\p{N}]", regex.I)
        ps = regex.compile(r"'s", regex.I)
        for cp in code_points():
            c = chr(cp)
            if unicodedata.category(c) == "Cn" or c.isspace():
                continue
            cat = unicodedata.category(c)[0]
            if cat in "LN":
                continue
            if not pl.match(c) and not pn.match(c) and not po.match(c):
                unmatched.append(cp)
        # Characters other than 's' that the contraction 's matches after
        # lower() (IGNORECASE simple folding: U+017F long s).
        for cp in code_points():
            c = chr(cp)
            if c != "s" and c.lower() == c and ps.fullmatch("'" + c):
                s_fold.append(cp)
    else:
        sys.stderr.write("warning: regex module missing, using known values\n")
        unmatched = [0x345]
        s_fold = [0x17F]

    with open(path, "w", encoding="ascii") as f:
        f.write("/* GENERATED by tools/gen/gen_unicode_tables.py from Python %s\n"
                " * (unicodedata %s). Do not edit: re-run the script. */\n"
                % (sys.version.split()[0], unicodedata.unidata_version))
        f.write('#include "nn/unicode_tables.h"\n\n')
        f.write('const char stdcpu_unicode_version[] = "%s";\n\n' % unicodedata.unidata_version)
        emit_ranges(f, "stdcpu_unicode_letter", letter, "General_Category L* (\\p{L})")
        emit_ranges(f, "stdcpu_unicode_number", number, "General_Category N* (\\p{N})")
        emit_ranges(f, "stdcpu_unicode_space", space, "str.isspace() (Python re \\s)")
        emit_ranges(f, "stdcpu_unicode_case_ignorable", ignorable,
                    "case-ignorable, as str.lower()'s Final_Sigma rule sees it")
        emit_ranges(f, "stdcpu_unicode_cased", cased,
                    "cased and not case-ignorable, as the Final_Sigma rule sees it")
        f.write("/* str.lower() one-to-one mappings as runs: code points first,\n"
                " * first+stride, ... (count of them) map to cp + delta (%d runs). */\n" % len(runs))
        f.write("const stdcpu_unicode_lower_run stdcpu_unicode_lower_runs[] = {\n")
        line = "   "
        for first, count, stride, delta in runs:
            item = " {0x%X, %d, %d, %d}," % (first, count, stride, delta)
            if len(line) + len(item) > 110:
                f.write(line + "\n")
                line = "   "
            line += item
        f.write(line + "\n};\n")
        f.write("const size_t stdcpu_unicode_lower_runs_count = %d;\n\n" % len(runs))
        f.write("/* str.lower() results longer than one code point. */\n")
        f.write("const stdcpu_unicode_lower_multi stdcpu_unicode_lower_multis[] = {\n")
        for cp, m in multi:
            m = m + [0] * (3 - len(m))
            f.write("    {0x%X, %d, {0x%X, 0x%X, 0x%X}},\n" % (cp, len([x for x in m if x]), m[0], m[1], m[2]))
        f.write("};\n")
        f.write("const size_t stdcpu_unicode_lower_multis_count = %d;\n\n" % len(multi))
        f.write("/* Not space, letter or number, yet matched by no alternative of the\n"
                " * CLIP split regex (regex module, IGNORECASE): dropped by the split. */\n")
        f.write("const uint32_t stdcpu_unicode_split_unmatched[] = {%s};\n"
                % ", ".join("0x%X" % cp for cp in unmatched))
        f.write("const size_t stdcpu_unicode_split_unmatched_count = %d;\n\n" % len(unmatched))
        f.write("/* Lowercase characters other than 's' that the contraction 's matches\n"
                " * (IGNORECASE simple case folding). */\n")
        f.write("const uint32_t stdcpu_unicode_contraction_s[] = {%s};\n"
                % ", ".join("0x%X" % cp for cp in s_fold))
        f.write("const size_t stdcpu_unicode_contraction_s_count = %d;\n" % len(s_fold))


def c_string(s):
    out = []
    for ch in s:
        if ch.isalnum() and ord(ch) < 128 or ch == ";":
            out.append(ch)
        else:
            raise ValueError("unexpected entity name character %r" % ch)
    return "".join(out)


def gen_html(path):
    ents = sorted(html.entities.html5.items(), key=lambda kv: kv[0].encode("ascii"))
    invalid_charrefs = sorted(html._invalid_charrefs.items())
    invalid_cps = sorted(html._invalid_codepoints)
    with open(path, "w", encoding="ascii") as f:
        f.write("/* GENERATED by tools/gen/gen_unicode_tables.py from Python %s\n"
                " * html.entities.html5 and html's invalid character-reference rules.\n"
                " * Do not edit: re-run the script. */\n" % sys.version.split()[0])
        f.write('#include "nn/unicode_tables.h"\n\n')
        f.write("/* Named references sorted by name (byte order); names with and without\n"
                " * the trailing ';' are separate entries, as in html.entities.html5. */\n")
        f.write("const stdcpu_html_entity stdcpu_html_entities[] = {\n")
        for name, value in ents:
            cps = [ord(c) for c in value]
            assert 1 <= len(cps) <= 2
            cps += [0] * (2 - len(cps))
            f.write('    {"%s", {0x%X, 0x%X}},\n' % (c_string(name), cps[0], cps[1]))
        f.write("};\n")
        f.write("const size_t stdcpu_html_entities_count = %d;\n\n" % len(ents))
        f.write("/* &#N; with N in this table gives the listed code point (html._invalid_charrefs). */\n")
        f.write("const uint32_t stdcpu_html_invalid_charrefs[][2] = {\n")
        for k, v in invalid_charrefs:
            assert len(v) == 1
            f.write("    {0x%X, 0x%X},\n" % (k, ord(v)))
        f.write("};\n")
        f.write("const size_t stdcpu_html_invalid_charrefs_count = %d;\n\n" % len(invalid_charrefs))
        rngs = []
        for cp in invalid_cps:
            if rngs and rngs[-1][1] == cp - 1:
                rngs[-1][1] = cp
            else:
                rngs.append([cp, cp])
        emit_ranges(f, "stdcpu_html_invalid_codepoints", rngs,
                    "&#N; with N here gives nothing (html._invalid_codepoints)")


def gen_fix(path):
    """NFC data (canonical decompositions, combining classes, primary
    composites) and the character maps of the ftfy subset."""
    decomp = []
    for cp in code_points():
        d = unicodedata.decomposition(chr(cp))
        if not d or d.startswith("<"):
            continue
        parts = [int(x, 16) for x in d.split()]
        assert 1 <= len(parts) <= 2
        composes = (len(parts) == 2 and
                    unicodedata.normalize("NFC", chr(parts[0]) + chr(parts[1])) == chr(cp))
        decomp.append((cp, parts[0], parts[1] if len(parts) == 2 else 0, composes))
    comp_index = sorted((i for i, e in enumerate(decomp) if e[3]), key=lambda i: (decomp[i][1], decomp[i][2]))
    assert len(decomp) < 65536
    ccc = []
    for cp in code_points():
        c = unicodedata.combining(chr(cp))
        if not c:
            continue
        if ccc and ccc[-1][1] == cp - 1 and ccc[-1][2] == c:
            ccc[-1][1] = cp
        else:
            ccc.append([cp, cp, c])
    # Smallest code point that takes part in NFC changes (decomposes, has a
    # combining class, or is the second of a composition): below it NFC is
    # the identity.
    nfc_min = min([e[0] for e in decomp] + [r[0] for r in ccc] + [decomp[i][2] for i in comp_index])
    width = {0x3000: [0x20]}
    for cp in range(0xFF01, 0xFFF0):
        alt = unicodedata.normalize("NFKC", chr(cp))
        if alt != chr(cp):
            width[cp] = [ord(c) for c in alt]
    assert all(len(v) <= 2 for v in width.values())
    c1 = []
    for b in range(0x80, 0xA0):
        try:
            c1.append(ord(bytes([b]).decode("cp1252")))
        except UnicodeDecodeError:
            c1.append(b)  # "sloppy" windows-1252: undefined bytes stay
    with open(path, "w", encoding="ascii") as f:
        f.write("/* GENERATED by tools/gen/gen_unicode_tables.py from Python %s\n"
                " * (unicodedata %s). Do not edit: re-run the script. */\n"
                % (sys.version.split()[0], unicodedata.unidata_version))
        f.write('#include "nn/unicode_tables.h"\n\n')
        f.write("/* Canonical decompositions (one level; second == 0: singleton),\n"
                " * sorted by code point; composes = primary composite for NFC. */\n")
        f.write("const stdcpu_unicode_decomp stdcpu_unicode_decomps[] = {\n")
        line = "   "
        for cp, a, b, c in decomp:
            item = " {0x%X, 0x%X, 0x%X, %d}," % (cp, a, b, int(c))
            if len(line) + len(item) > 110:
                f.write(line + "\n")
                line = "   "
            line += item
        f.write(line + "\n};\n")
        f.write("const size_t stdcpu_unicode_decomps_count = %d;\n\n" % len(decomp))
        f.write("/* Indices into stdcpu_unicode_decomps of the primary composites, sorted by\n"
                " * (first, second): the NFC composition table. */\n")
        f.write("const uint16_t stdcpu_unicode_compose_index[] = {\n")
        line = "   "
        for i in comp_index:
            item = " %d," % i
            if len(line) + len(item) > 110:
                f.write(line + "\n")
                line = "   "
            line += item
        f.write(line + "\n};\n")
        f.write("const size_t stdcpu_unicode_compose_index_count = %d;\n\n" % len(comp_index))
        f.write("/* Canonical_Combining_Class runs (zero elsewhere). */\n")
        f.write("const stdcpu_unicode_ccc_range stdcpu_unicode_ccc_ranges[] = {\n")
        line = "   "
        for lo, hi, c in ccc:
            item = " {0x%X, 0x%X, %d}," % (lo, hi, c)
            if len(line) + len(item) > 110:
                f.write(line + "\n")
                line = "   "
            line += item
        f.write(line + "\n};\n")
        f.write("const size_t stdcpu_unicode_ccc_ranges_count = %d;\n" % len(ccc))
        f.write("const uint32_t stdcpu_unicode_nfc_min = 0x%X;\n" % nfc_min)
        f.write("/* No composition has a second character below this (Hangul V/T included). */\n")
        f.write("const uint32_t stdcpu_unicode_compose_second_min = 0x%X;\n\n"
                % min([decomp[i][2] for i in comp_index] + [0x1161]))
        f.write("/* ftfy fix_character_width: U+3000 and the NFKC forms of U+FF01..FFEF. */\n")
        f.write("const stdcpu_unicode_map2 stdcpu_unicode_width_map[] = {\n")
        line = "   "
        for cp in sorted(width):
            v = width[cp] + [0] * (2 - len(width[cp]))
            item = " {0x%X, {0x%X, 0x%X}}," % (cp, v[0], v[1])
            if len(line) + len(item) > 110:
                f.write(line + "\n")
                line = "   "
            line += item
        f.write(line + "\n};\n")
        f.write("const size_t stdcpu_unicode_width_map_count = %d;\n\n" % len(width))
        f.write("/* ftfy fix_c1_controls: U+0080..U+009F decoded as (sloppy) windows-1252. */\n")
        f.write("const uint16_t stdcpu_unicode_c1_map[32] = {%s};\n"
                % ", ".join("0x%X" % c for c in c1))


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "src/nn"
    gen_unicode(os.path.join(out_dir, "unicode_tables.c"))
    gen_html(os.path.join(out_dir, "unicode_html_tables.c"))
    gen_fix(os.path.join(out_dir, "unicode_fix_tables.c"))


if __name__ == "__main__":
    main()
