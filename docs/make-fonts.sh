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
for style in Regular Bold; do
  pyftsubset "$noto/opentype/noto/NotoSansCJK-$style.ttc" --font-number=2 --text-file="$work/gb2312.txt" \
    --unicodes="U+0020-007E,U+00A0-00FF,U+2000-206F,U+3000-303F,U+FF00-FFEF" --layout-features='*' \
    --name-IDs='*' --output-file="$out/NotoSansSC-$style.otf"
done
ls -l "$out"
