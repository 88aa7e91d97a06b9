#!/bin/sh
# vPDQ benchmark: encodes H.264 test videos from real photos (slow zooms and
# pans, 30 fps, 60 s, at SD, 720p and 1080p), caches them, and runs
# bench_video on them against `ffmpeg -threads 1 -i F -f null -`.
#
# Usage: benchmarks/video.sh [BUILD_DIR] [-r RUNS] [--only sd|720p|1080p]
#
# Photos come from the benchmark image corpus (Debian's python3-skimage data
# images and mate-backgrounds): benchmarks/corpus.sh builds it when present;
# otherwise this script fetches the same packages itself with
# `apt-get download` + `dpkg -x` into the same layout. Videos go to
# ${CORDON_CACHE:-$HOME/.cache/cordon}/video/ and are reused.
# JSON lines go to stdout, the table to stderr.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
build="build"
runs=3
only=""
while [ $# -gt 0 ]; do
    case "$1" in
    -r) runs="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) build="$1"; shift ;;
    esac
done
bench="$here/../$build/bench/bench_video"
[ -x "$bench" ] || { echo "video.sh: build $bench first (make)" >&2; exit 1; }

cache="${CORDON_CACHE:-$HOME/.cache/cordon}"
log() { echo "video.sh: $*" >&2; }

# ---- Photos ----------------------------------------------------------------
if [ -x "$here/corpus.sh" ]; then
    corpus=$("$here/corpus.sh")
else
    corpus="$cache/corpus"
    if ! ls "$corpus"/images/*.jpg >/dev/null 2>&1; then
        log "fetching photos (python3-skimage, mate-backgrounds)"
        mkdir -p "$corpus/debs" "$corpus/root" "$corpus/images"
        (cd "$corpus/debs" && apt-get download python3-skimage mate-backgrounds >&2) ||
            { log "apt-get download failed (run apt-get update as root?)"; exit 1; }
        for d in "$corpus"/debs/*.deb; do dpkg -x "$d" "$corpus/root"; done
        find "$corpus/root" -path '*skimage/data/*' \( -name '*.png' -o -name '*.jpg' \) |
            while read -r f; do cp "$f" "$corpus/images/skimage-$(basename "$f")"; done
        find "$corpus/root" -path '*backgrounds/mate/*' \( -name '*.png' -o -name '*.jpg' \) |
            while read -r f; do
                sub=$(basename "$(dirname "$f")")
                cp "$f" "$corpus/images/mate-$sub-$(basename "$f")"
            done
    fi
fi
images="$corpus/images"

# Ten photographs: the MATE nature set first, then skimage's photos.
pick=""
for n in mate-nature-Aqua mate-nature-Dune mate-nature-FreshFlower \
    mate-nature-Garden mate-nature-GreenMeadow mate-nature-LadyBird \
    mate-nature-RainDrops mate-nature-Storm mate-nature-TwoWings \
    mate-nature-Wood skimage-astronaut skimage-chelsea skimage-coffee \
    skimage-rocket skimage-motorcycle_left; do
    f=$(ls "$images/$n".* 2>/dev/null | head -n 1 || true)
    [ -n "$f" ] && pick="$pick $f"
done
set -- $pick
[ $# -ge 10 ] || { log "need 10 photos in $images, found $#"; exit 1; }

# ---- Videos ------------------------------------------------------------------
vdir="$cache/video"
mkdir -p "$vdir"

# make_video NAME W H: 10 segments of 6 s; even ones zoom in slowly
# (zoompan), odd ones pan across a wider copy of the photo (scroll + crop).
make_video() {
    name=$1 w=$2 h=$3
    shift 3
    out="$vdir/pan-zoom-$name.mp4"
    [ -s "$out" ] && return 0
    log "encoding $out (60 s, ${w}x$h, 30 fps, H.264)"
    inputs="" graph="" cat=""
    i=0
    for f in "$@"; do
        [ $i -ge 10 ] && break
        if [ $((i % 2)) -eq 0 ]; then
            inputs="$inputs -i $f"
            graph="$graph[$i:v]scale=$((w * 2)):$((h * 2)):force_original_aspect_ratio=increase,crop=$((w * 2)):$((h * 2)),setsar=1,zoompan=z='1+0.0025*on':x='iw/2-iw/zoom/2':y='ih/2-ih/zoom/2':d=180:s=${w}x$h:fps=30,format=yuv420p[s$i];"
        else
            inputs="$inputs -loop 1 -framerate 30 -t 6 -i $f"
            graph="$graph[$i:v]scale=$((w * 3 / 2)):$h:force_original_aspect_ratio=increase,crop=$((w * 3 / 2)):$h,setsar=1,scroll=horizontal=0.0015,crop=$w:$h:0:0,format=yuv420p[s$i];"
        fi
        cat="$cat[s$i]"
        i=$((i + 1))
    done
    # shellcheck disable=SC2086
    ffmpeg -nostdin -v error -y $inputs -filter_complex "${graph}${cat}concat=n=10:v=1:a=0[v]" \
        -map '[v]' -r 30 -c:v libx264 -preset fast -crf 23 -pix_fmt yuv420p \
        -movflags +faststart "$out.tmp.mp4"
    mv "$out.tmp.mp4" "$out"
}

files=""
for spec in sd:854:480 720p:1280:720 1080p:1920:1080; do
    name=${spec%%:*} rest=${spec#*:}
    [ -n "$only" ] && [ "$only" != "$name" ] && continue
    make_video "$name" "${rest%%:*}" "${rest#*:}" "$@"
    files="$files $vdir/pan-zoom-$name.mp4"
done

log "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck disable=SC2086
"$bench" -r "$runs" $files
