#!/usr/bin/env bash
# Remake the README's pictures: build each layout from the shipped content and example brand,
# then rasterize with poppler's pdftoppm.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
python generate.py build -o "$out/letter.pdf" >/dev/null
python generate.py build --layout a4 -o "$out/a4.pdf" >/dev/null
python generate.py build --layout large-print -o "$out/large-print.pdf" >/dev/null
python generate.py build --layout trifold --sections mat,overdose-safety,detox -o "$out/trifold.pdf" >/dev/null
python generate.py build --sections overdose-safety --bleed 0.125in --crop-marks -o "$out/print-shop.pdf" >/dev/null
python generate.py build --sections mat,overdose-safety --prepared-for "Alex Example" --counselor "Jamie Example, LADC" \
    --next-visit "$(date -d "+7 days" +%F)" --next-visit-time 14:30 --note "Bring your pill bottle to your next visit." -o "$out/tailored.pdf" >/dev/null
python generate.py record -o "$out/record.pdf" >/dev/null
python generate.py build --lang es -o "$out/es-letter.pdf" >/dev/null
python generate.py build --lang es --layout trifold --sections mat,overdose-safety,detox -o "$out/es-trifold.pdf" >/dev/null
python generate.py build --lang zh-Hans -o "$out/zh-letter.pdf" >/dev/null
python generate.py build --lang ar -o "$out/ar-letter.pdf" >/dev/null
python generate.py build --lang ar --layout trifold --sections mat,overdose-safety -o "$out/ar-trifold.pdf" >/dev/null
# The page that holds a text, so the pictures follow the content when a layout change moves it.
page_with() {
    local pages n
    pages=$(pdfinfo "$1" | awk '/^Pages:/ {print $2}')
    for n in $(seq "$pages"); do
        pdftotext -f "$n" -l "$n" "$1" - | grep -q -- "$2" && { echo "$n"; return; }
    done
    echo "docs/make-images.sh: no page of $1 holds '$2'" >&2
    return 1
}
pdftoppm -r 60 -png -f 1 -l 1 -singlefile "$out/letter.pdf" docs/handout-page1
p=$(page_with "$out/letter.pdf" "Keep yourself and others safe")
pdftoppm -r 45 -png -f "$p" -l "$p" -singlefile "$out/letter.pdf" docs/handout-table
p=$(page_with "$out/letter.pdf" "Give naloxone. Lay")
pdftoppm -r 45 -png -f "$p" -l "$p" -singlefile "$out/letter.pdf" docs/handout-steps
p=$(page_with "$out/tailored.pdf" "My plan for")
pdftoppm -r 45 -png -f "$p" -l "$p" -singlefile "$out/tailored.pdf" docs/handout-my-plan
pdftoppm -r 45 -png -f 1 -l 1 -singlefile "$out/record.pdf" docs/review-record
pdftoppm -r 45 -png -f 1 -l 1 -singlefile "$out/es-letter.pdf" docs/spanish-letter
pdftoppm -r 45 -png -f 1 -l 1 -singlefile "$out/es-trifold.pdf" docs/spanish-trifold-outside
pdftoppm -r 45 -png -f 1 -l 1 -singlefile "$out/zh-letter.pdf" docs/chinese-letter
pdftoppm -r 45 -png -f 1 -l 1 -singlefile "$out/ar-letter.pdf" docs/arabic-letter
pdftoppm -r 45 -png -f 1 -l 1 -singlefile "$out/ar-trifold.pdf" docs/arabic-trifold-outside
pdftoppm -r 40 -png -f 1 -l 1 -singlefile "$out/a4.pdf" docs/layout-a4
pdftoppm -r 40 -png -f 1 -l 1 -singlefile "$out/large-print.pdf" docs/layout-large-print
pdftoppm -r 45 -png -f 1 -l 1 -singlefile "$out/trifold.pdf" docs/layout-trifold-outside
pdftoppm -r 45 -png -f 2 -l 2 -singlefile "$out/trifold.pdf" docs/layout-trifold-inside
pdftoppm -r 40 -png -f 1 -l 1 -singlefile "$out/print-shop.pdf" docs/layout-print-shop
# The counselor's page, from the real server, filled in and after "Make PDF" (Playwright and Debian's chromium).
port=8799
python generate.py serve --port "$port" --workers 1 >/dev/null 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; rm -rf "$out"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
python docs/page_screenshot.py "http://127.0.0.1:$port/" docs/serve-page.png
python - <<'PY'
from PIL import Image  # shrink to the README's width
image = Image.open("docs/serve-page.png")
image.thumbnail((700, 4000))
image.save("docs/serve-page.png", optimize=True)
PY
# The page opened from a chart: a real EHR launch from the tests' EHR (needs .venv-fhir, as the README's test command makes it).
python docs/launch_screenshot.py docs/launched-page.png
python - <<'PY'
from PIL import Image  # shrink to the README's width, in a palette of 256 colours
image = Image.open("docs/launched-page.png")
image.thumbnail((700, 4000))
image.convert("RGB").quantize(256).save("docs/launched-page.png", optimize=True)
PY
ls -1 docs/*.png
