#!/usr/bin/env bash
# Remake the bundled fonts for scripts Atkinson Hyperlegible does not reach, from Debian's Noto
# packages (bookworm: fonts-noto-core 20201225-1, fonts-noto-cjk 1:20220127+repack1-1), subset so
# the repository stays small. Run from the repository root with the project's venv active; the
# output replaces styles/fonts/Noto*. The PDF a clinic prints depends only on these files, never on
# the fonts a machine has (styles/fonts.css loads them; check reports a character none can draw).
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download fonts-noto-core fonts-noto-cjk >/dev/null && for deb in *.deb; do dpkg -x "$deb" x; done)
noto=$work/x/usr/share/fonts
out=styles/fonts
# Latin with Vietnamese (Latin Extended Additional), combining marks, punctuation and currency.
latin="U+0000-024F,U+0300-036F,U+1E00-1EFF,U+2000-206F,U+20A0-20CF,U+2100-214F,U+2190-21FF,U+2212,U+25CF,U+FFFD"
for style in Regular Bold Italic BoldItalic; do
  pyftsubset "$noto/truetype/noto/NotoSans-$style.ttf" --unicodes="$latin" --layout-features='*' \
    --name-IDs='*' --output-file="$out/NotoSans-$style.ttf"
done
# Arabic in the Naskh style Arabic readers learn in school and read in print; every shaping feature.
for style in Regular Bold; do
  pyftsubset "$noto/truetype/noto/NotoNaskhArabic-$style.ttf" --unicodes='*' --layout-features='*' \
    --name-IDs='*' --output-file="$out/NotoNaskhArabic-$style.ttf"
done
# Simplified Chinese: the SC face of the collection, cut to GB 2312 (every character of everyday
# Simplified Chinese text) with CJK and full-width punctuation; check names any character outside.
python3 - "$work/gb2312.txt" <<'PY'
import sys
chars = set()
for high in range(0xA1, 0xF8):
    for low in range(0xA1, 0xFF):
        try:
            chars.add(bytes([high, low]).decode("gb2312"))
        except UnicodeDecodeError:
            pass
open(sys.argv[1], "w", encoding="utf-8").write("".join(sorted(chars)))
PY
# Its CFF outlines become TrueType ones: WeasyPrint embeds a subset CID-keyed CFF font whose glyph
# codes outloud (and so, perhaps, other readers) resolves to .notdef; as TrueType it is embedded like
# every other font here (CIDFontType2, FontFile2).
for style in Regular Bold; do
  pyftsubset "$noto/opentype/noto/NotoSansCJK-$style.ttc" --font-number=2 --text-file="$work/gb2312.txt" \
    --unicodes="U+0020-007E,U+00A0-00FF,U+2000-206F,U+3000-303F,U+FF00-FFEF" --layout-features='*' \
    --name-IDs='*' --output-file="$work/NotoSansSC-$style.otf"
  python3 - "$work/NotoSansSC-$style.otf" "$out/NotoSansSC-$style.ttf" <<'PY'
import sys
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont, newTable

# The source font's own date stays: the same run makes the same bytes.
font = TTFont(sys.argv[1], recalcTimestamp=False)
order, glyphs = font.getGlyphOrder(), font.getGlyphSet()
glyf = newTable("glyf")
glyf.glyphOrder, glyf.glyphs = order, {}
for name in order:
    pen = TTGlyphPen(glyphs)
    # Cubic curves to quadratic ones within 1 unit of 1000 per em: the same shapes at any print size.
    glyphs[name].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
    glyf[name] = pen.glyph()
font["glyf"], font["loca"] = glyf, newTable("loca")
maxp = font["maxp"]
maxp.tableVersion = 0x00010000
for field in ("maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs",
              "maxStackElements", "maxSizeOfInstructions", "maxComponentElements", "maxComponentDepth"):
    setattr(maxp, field, 0)
maxp.maxZones = 1
post = font["post"]
post.formatType, post.extraNames, post.mapping, post.glyphOrder = 2.0, [], {}, order
font["head"].glyphDataFormat = 0
for table in ("CFF ", "VORG"):
    if table in font:
        del font[table]
font.sfntVersion = "\x00\x01\x00\x00"
font.save(sys.argv[2])
PY
done
ls -l "$out"
