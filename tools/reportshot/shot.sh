#!/bin/sh
# Makes docs/availability-report.png, the README's picture of the HTML
# availability report, and the sample beside it: it runs TestAvailability
# (cmd/zbridge, against the z/VM simulator, logger and a Linux agent) with
# ZBRIDGE_REPORT_SAMPLE set, so the test writes the report of its window as
# text (report.txt, what `zbridge report --format text` prints), as HTML
# (report.html) and the config that produced them (config.toml); then it
# renders report.html with headless Chromium and crops the empty bottom.
# The README's sample text and config are copied from the same directory,
# so that text, config and picture come from one run.
# Needs (Debian): chromium netpbm, and the peers of TestAvailability (.ci/run
# installs them). Run from the repository root:
#   sh tools/reportshot/shot.sh [PNG [SAMPLE_DIR]]
# PNG defaults to docs/availability-report.png; SAMPLE_DIR (kept) to a
# temporary directory (removed).
set -eu
out=${1:-docs/availability-report.png}
work=$(mktemp -d)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT INT TERM
sample=${2:-$work/sample}
mkdir -p "$sample"
sample=$(cd "$sample" && pwd)
ZBRIDGE_REPORT_SAMPLE=$sample go test ./cmd/zbridge -run '^TestAvailability$' -count=1 >"$work/test.log" 2>&1 ||
	{ cat "$work/test.log"; exit 1; }
[ -s "$sample/report.html" ] || { echo "the test wrote no $sample/report.html"; exit 1; }
# The page is at most 1000px wide plus its 24px margins; a tall window
# holds all of it, and pnmcrop takes off the white below the last line.
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$work/chromium" \
	--window-size=1100,6000 --screenshot="$work/page.png" "file://$sample/report.html" >"$work/chromium.log" 2>&1 ||
	{ cat "$work/chromium.log"; exit 1; }
mkdir -p "$(dirname "$out")"
pngtopnm "$work/page.png" | pnmcrop -white -bottom | pnmpad -white -bottom 24 | pnmtopng >"$out"
echo "wrote $out; sample in $sample"
