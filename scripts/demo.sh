#!/usr/bin/env bash
# make demo: the main job, end to end, on the bundled media.
#  1. builds a demo database of "known-bad" images in a temporary folder;
#  2. makes transformed copies of them with the ffmpeg command-line tool
#     (re-encoded, resized, cropped, rotated, flipped, captioned);
#  3. adds a few unrelated images;
#  4. runs `cordon match` on all of them and prints what matched and how;
#  5. does the same for a known video (vPDQ): a re-encoded and resized
#     copy, a clip cut from the middle, a screenshot of one frame and an
#     unrelated video.
set -euo pipefail
cordon=$(readlink -f "${1:-build/cordon}")
cd "$(dirname "$0")/.."
img=$PWD/tests/vectors/pdq/images
work=$(mktemp -d "${TMPDIR:-/tmp}/cordon-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
export CORDON_DB="$work/demo.db"
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }

echo "== $("$cordon" --version)"
echo "== demo database: $CORDON_DB"
echo

# 1. Known-bad media, as an analyst would add it.
mkdir -p "$work/known" "$work/uploads"
cp "$img/bridge-mods_aaa-orig.jpg" "$work/known/outlet-photo-report-01.jpg"
cp "$img/reg-test-input_pen-and-coaster.png" "$work/known/outlet-magazine-page-07.png"
cp "$img/misc-images_c.png" "$work/known/outlet-poster-03.png"
cp "$img/pytx-letterboxed_sample-b.jpg" "$work/known/outlet-video-still-12.jpg"
"$cordon" bank create DEMO_OUTLET_MEDIA --label entity:demo-outlet \
    --label type:image >/dev/null
"$cordon" add --bank DEMO_OUTLET_MEDIA --label behaviour:recruitment \
    --note "demo: known propaganda" --source platform "$work/known"
echo

# 2. The same media as it comes back: re-encoded, resized, cropped,
#    rotated, flipped, captioned.
k=$work/known u=$work/uploads
ff -i "$k/outlet-photo-report-01.jpg" -q:v 12 "$u/reencoded-low-quality.jpg"
ff -i "$k/outlet-photo-report-01.jpg" -vf scale=iw/3:-2 "$u/resized-one-third.jpg"
ff -i "$k/outlet-photo-report-01.jpg" -vf "crop=iw*0.97:ih*0.97" "$u/cropped-3-percent.jpg"
ff -i "$k/outlet-magazine-page-07.png" -vf "crop=iw*0.90:ih*0.90" "$u/cropped-10-percent.png"
ff -i "$k/outlet-poster-03.png" -vf transpose=1 "$u/rotated-90.png"
ff -i "$k/outlet-poster-03.png" -vf hflip "$u/mirrored.png"
ff -i "$k/outlet-video-still-12.jpg" -vf scale=800:-2 -q:v 4 "$u/reposted-800px.jpg"
caption="drawtext=text='SHARE BEFORE IT IS DELETED':fontsize=h/14:fontcolor=white:box=1:boxcolor=black@0.7:x=(w-text_w)/2:y=h-th-h/20"
ff -i "$k/outlet-photo-report-01.jpg" -vf "$caption" "$u/captioned.jpg" 2>/dev/null ||
    ff -i "$k/outlet-photo-report-01.jpg" \
        -vf "drawbox=y=ih*0.85:w=iw:h=ih*0.1:color=black@0.7:t=fill" "$u/captioned.jpg"
cp "$k/outlet-magazine-page-07.png" "$u/exact-copy.png"

# 3. Unrelated uploads.
cp "$img/reg-test-input_labelme-subset_q2821.jpg" "$u/unrelated-street.jpg"
cp "$img/reg-test-input_labelme-subset_q1050.jpg" "$u/unrelated-room.jpg"
cp "$img/pytx-rgb.jpeg" "$u/unrelated-cat.jpg"

# 4. Match every upload, rotations and flips included.
echo "== cordon match --dihedral $u/*"
printf '%-28s %-8s %-18s %5s %-7s %-10s %s\n' UPLOAD VERDICT BANK ITEM SIGNAL DISTANCE VARIANT
set +e
"$cordon" match --dihedral "$u"/* >"$work/match.txt" 2>"$work/match.err"
status=$?
set -e
awk -F'\t' '{
    n = split($1, p, "/"); f = p[n];
    if ($2 == "-") printf "%-28s %-8s\n", f, "clean";
    else printf "%-28s %-8s %-18s %5s %-7s %-10s %s\n", f, "MATCH", $2, $3, $4, $5, $6;
}' "$work/match.txt"
echo
echo "PDQ tolerates re-encoding, resizing, captions and (with --dihedral)"
echo "rotations and flips; crops of more than a few percent move it past the"
echo "match distance, so cropped-10-percent.png is expected to come back clean."
echo "cordon match exit status: $status (0: something matched, 1: nothing, 2: error)"
if [ -s "$work/match.err" ]; then
    echo "messages:"
    sed 's/^/  /' "$work/match.err"
fi
[ "$status" -le 1 ]
echo

# 5. Video: a known video, and what comes back of it.
vid=$PWD/tests/vectors/vpdq/videos
mkdir -p "$work/known-video" "$work/video-uploads"
kv=$work/known-video/outlet-video-19s.mp4 vu=$work/video-uploads
cp "$vid/chair-19-sd-bar.mp4" "$kv"
"$cordon" bank create DEMO_OUTLET_VIDEO --label entity:demo-outlet \
    --label type:video >/dev/null
"$cordon" add --bank DEMO_OUTLET_VIDEO --label type:video \
    --note "demo: known propaganda video" --source platform "$kv"
echo
ff -i "$kv" -vf scale=iw/2:-2 -c:v libx264 -preset veryfast -crf 30 -an \
    "$vu/reencoded-half-size.mp4"
ff -ss 6 -i "$kv" -t 7.5 -c:v libx264 -preset veryfast -an "$vu/clip-from-middle.mp4"
ff -ss 12 -i "$kv" -frames:v 1 -q:v 3 "$vu/screenshot-at-12s.jpg"
cp "$vid/doorknob-hd-no-bar.mp4" "$vu/unrelated-video.mp4"

echo "== cordon match $vu/*"
printf '%-24s %-8s %-18s %5s %-6s %6s %7s %s\n' UPLOAD VERDICT BANK ITEM SIGNAL QUERY% TARGET% DETAIL
set +e
"$cordon" match "$vu"/* >"$work/vmatch.txt" 2>"$work/vmatch.err"
vstatus=$?
set -e
awk -F'\t' '{
    n = split($1, p, "/"); f = p[n];
    if ($2 == "-") { printf "%-24s %-8s\n", f, "clean"; next }
    q = "-"; t = "-"; d = "distance " $5; v = "MATCH";
    for (i = 8; i <= NF; i++) {
        split($i, kv, "=");
        if (kv[1] == "query%") q = kv[2];
        else if (kv[1] == "target%") t = kv[2];
        else if (kv[1] == "frames") d = d ", " kv[2] " frames";
        else if (kv[1] == "timestamp") d = d ", at " kv[2] " s";
        else if (kv[1] == "verdict") v = toupper(kv[2]);
    }
    printf "%-24s %-8s %-18s %5s %-6s %6s %7s %s\n", f, v, $2, $3, $4, q, t, d;
}' "$work/vmatch.txt"
echo
echo "vPDQ hashes one frame per second and compares frame lists: query% is"
echo "the share of the upload's frames found in the known video, target%"
echo "the share of the known video found in the upload. A clip matches on"
echo "the query side (80% or more) while covering only part of the target;"
echo "a screenshot matches the video item by its PDQ against the frames."
echo "cordon match exit status: $vstatus"
if [ -s "$work/vmatch.err" ]; then
    echo "messages:"
    sed 's/^/  /' "$work/vmatch.err"
fi
[ "$vstatus" -le 1 ]
