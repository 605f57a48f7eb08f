#!/usr/bin/env python3
"""Generate the Unicode and HTML-entity tables of the CLIP tokenizer.

Development-time only: the output is committed, nothing runs Python at run
time. Usage (from the repository root):

    python3 tools/gen/gen_unicode_tables.py src/nn

writes src/nn/unicode_tables.c and src/nn/unicode_html_tables.c. Every table
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


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "src/nn"
    gen_unicode(os.path.join(out_dir, "unicode_tables.c"))
    gen_html(os.path.join(out_dir, "unicode_html_tables.c"))


if __name__ == "__main__":
    main()
