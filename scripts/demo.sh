#!/usr/bin/env bash
# make demo: the main job on the bundled media. Hashes the bundled
# reference images the way an upload path would, and shows how near
# re-encoded and transformed copies land.
set -euo pipefail
cordon=${1:-build/cordon}
cd "$(dirname "$0")/.."
img=tests/vectors/pdq/images

echo "== cordon $("$cordon" --version | cut -d' ' -f2-)"
echo
echo "== Hashing the bundled images (pdq quality md5 sha256 file)"
"$cordon" hash "$img"/bridge-mods_*.jpg "$img"/reg-test-input_pen-and-coaster.png \
    | awk '{ printf "%s %3s %s..  %s\n", $1, $2, substr($3, 1, 8), $5 }'

echo
echo "== Distance of each modified bridge photo from the original (match <= 31)"
orig=$("$cordon" hash "$img/bridge-mods_aaa-orig.jpg" | cut -d' ' -f1)
"$cordon" hash "$img"/bridge-mods_*.jpg "$img"/reg-test-input_pen-and-coaster.png |
while read -r pdq q _ _ file; do
    d=0
    for i in $(seq 0 15); do
        a=$((16#${orig:$((i * 4)):4})); b=$((16#${pdq:$((i * 4)):4}))
        x=$((a ^ b))
        while [ $x -ne 0 ]; do d=$((d + (x & 1))); x=$((x >> 1)); done
    done
    verdict=$([ "$d" -le 31 ] && echo match || echo "no match")
    printf '  %-48s distance %3d  %s\n' "$(basename "$file")" "$d" "$verdict"
done

echo
echo "== A rotated copy, caught by the dihedral variants"
rot=$("$cordon" hash "$img/reg-test-input_dih_bridge-2-rotate-90.jpg" | cut -d' ' -f1)
"$cordon" hash --json --dihedral "$img/reg-test-input_dih_bridge-1-original.jpg" |
    sed 's/.*"rot90":"\([0-9a-f]*\)".*/\1/' | {
    read -r v
    echo "  rot90 variant of the original: $v"
    echo "  hash of the rotated file:      $rot"
}
