#!/usr/bin/env python3
"""Embed a text file in C as `const char NAME_text[]` and `const size_t NAME_len`.

Used at build time for the default configuration (etc/sluice.conf)."""
import sys

src, dst, name = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(src, "rb").read()
with open(dst, "w") as out:
    out.write("/* generated from %s by scripts/embed.py: do not edit */\n" % src.split("/")[-1])
    out.write("#include <stddef.h>\n")
    out.write("const char %s_text[] = {\n" % name)
    for i in range(0, len(data), 16):
        out.write("    " + ", ".join("0x%02x" % b for b in data[i:i + 16]) + ",\n")
    out.write("    0x00\n};\n")
    out.write("const size_t %s_len = %d;\n" % (name, len(data)))
