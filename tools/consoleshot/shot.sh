#!/bin/sh
# Makes docs/console.png, the README's picture of the 3270 console: it runs
# `zbridge demo`, opens its console in x3270 on a virtual X display (Xvfb),
# logs on, runs a Linux command and a CP command, and saves the window.
# Needs (Debian): x3270 xvfb x11-apps netpbm. Run from the repository root:
#   sh tools/consoleshot/shot.sh
set -eu
out=${1:-docs/console.png}
work=$(mktemp -d)
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT INT TERM
go build -o "$work/zbridge" ./cmd/zbridge
display=:$((90 + $$ % 9))
Xvfb "$display" -screen 0 1280x1024x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
pids="$pids $!"
"$work/zbridge" demo --interval 2s >"$work/demo.out" 2>"$work/demo.err" &
pids="$pids $!"
i=0
until console=$(sed -n 's/^3270 operator console: x3270 \(127\.0\.0\.1:[0-9]*\).*/\1/p' "$work/demo.out") && [ -n "$console" ]; do
	i=$((i + 1)); [ $i -lt 150 ] || { cat "$work/demo.out" "$work/demo.err"; exit 1; }; sleep 0.1
done
port=$((20000 + $$ % 10000))
DISPLAY=$display x3270 -model 3279-4 -scriptport "127.0.0.1:$port" -efont 3270-20 "$console" >"$work/x3270.log" 2>&1 &
pids="$pids $!"
s() { for a in "$@"; do x3270if -t "$port" "$a"; done; }
i=0
until s 'Wait(5,InputField)' >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 100 ] || exit 1; sleep 0.2; done
s 'String("operator")' 'Tab()' 'Enter()' 'Wait(10,InputField)' >/dev/null
sleep 4
s 'String("linux:demo1 uname -sr")' 'Enter()' >/dev/null
sleep 2
s 'String("zvm:VMSYS1 QUERY NAMES")' 'Enter()' >/dev/null
sleep 3
mkdir -p "$(dirname "$out")"
DISPLAY=$display xwd -root -silent | xwdtopnm 2>/dev/null | pnmcrop | pnmtopng >"$out"
echo "wrote $out"
