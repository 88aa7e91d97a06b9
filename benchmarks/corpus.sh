#!/bin/sh
# Fetches the image benchmark corpus from Debian packages into a cache outside
# the repository and prints the corpus directory on stdout (progress goes to
# stderr).
#
# Usage: benchmarks/corpus.sh [--force]
#
# Layout of ${CORDON_CACHE:-$HOME/.cache/cordon}/corpus/:
#   debs/       the .deb files, as `apt-get download` fetched them
#   root/       the packages unpacked with `dpkg -x` (never installed)
#   images/     the corpus: JPEG and PNG files with flat names
#               skimage-<name>.<ext> and mate-<dir>-<name>.<ext>
#   jpeg640/    every image re-encoded by the ffmpeg CLI as a JPEG that fits
#               in 640x480 (aspect kept, 4:2:0, -q:v 3), for server benchmarks
#   MANIFEST    package versions and one line per image: name bytes WxH
#
# Idempotent: a finished corpus (the .complete stamp) is reused as is;
# --force rebuilds it. Needs no root: `apt-get download` and `dpkg -x` work as
# any user. Only `apt-get update` needs root, and only if the package lists are
# missing; then the script prints the exact command and stops.
set -eu

CORPUS_VERSION=1
PACKAGES="python3-skimage mate-backgrounds"

cache="${CORDON_CACHE:-$HOME/.cache/cordon}"
dir="$cache/corpus"
stamp="$dir/.complete-v$CORPUS_VERSION"

log() { echo "corpus: $*" >&2; }
die() { echo "corpus: error: $*" >&2; exit 1; }

force=0
case "${1:-}" in
--force) force=1 ;;
"") ;;
-h | --help)
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
*) die "unknown argument '$1' (try --help)" ;;
esac

if [ "$force" = 0 ] && [ -f "$stamp" ]; then
    echo "$dir"
    exit 0
fi

for tool in apt-get apt-cache dpkg dpkg-deb ffmpeg ffprobe; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (Debian's apt, dpkg and ffmpeg are required)"
done

# A package with no candidate version means the package lists are missing or
# stale (fresh containers ship without them).
need_update=""
for p in $PACKAGES; do
    cand=$(apt-cache policy "$p" 2>/dev/null | sed -n 's/^ *Candidate: *//p')
    if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
        need_update="$need_update $p"
    fi
done
if [ -n "$need_update" ]; then
    if [ "$(id -u)" = 0 ]; then
        log "no candidate for$need_update; running apt-get update"
        apt-get update -qq >/dev/null || die "apt-get update failed"
    else
        echo "corpus: the apt package lists do not know$need_update." >&2
        echo "corpus: refresh them once, then run this script again:" >&2
        echo "  sudo apt-get update" >&2
        exit 1
    fi
fi

mkdir -p "$dir/debs" "$dir/root"
rm -f "$dir"/.complete-v*

# Download each package unless a .deb of it is already cached.
apt_opts="-q"
# As root, apt drops privileges to _apt, which cannot write into a directory
# under $HOME; tell it to stay root instead of warning.
[ "$(id -u)" = 0 ] && apt_opts="$apt_opts -o APT::Sandbox::User=root"
for p in $PACKAGES; do
    if ls "$dir/debs/${p}_"*.deb >/dev/null 2>&1; then
        log "have $(basename "$(ls "$dir/debs/${p}_"*.deb | head -n 1)")"
        continue
    fi
    log "downloading $p"
    # shellcheck disable=SC2086
    (cd "$dir/debs" && apt-get download $apt_opts "$p" >&2) ||
        die "apt-get download $p failed"
done

rm -rf "$dir/root" "$dir/images.tmp" "$dir/jpeg640.tmp"
mkdir -p "$dir/root" "$dir/images.tmp" "$dir/jpeg640.tmp"
for deb in "$dir"/debs/*.deb; do
    dpkg -x "$deb" "$dir/root"
done

# scikit-image's bundled sample data. Left out: truncated.jpg (deliberately
# corrupt) and the test patterns under 64 px a side (block, checker_bilevel,
# foo3x5x4indexed, palette_*), which measure nothing but call overhead.
sk="$dir/root/usr/lib/python3/dist-packages/skimage/data"
[ -d "$sk" ] || die "skimage data not found in python3-skimage (layout changed?)"
for f in "$sk"/*.png "$sk"/*.jpg; do
    [ -f "$f" ] || continue
    b=$(basename "$f")
    case "$b" in truncated.jpg) continue ;; esac
    wh=$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height \
        -of csv=p=0 "$f" 2>/dev/null || true)
    w=${wh%%,*}
    h=${wh##*,}
    if [ -z "$wh" ] || [ "$w" -lt 64 ] || [ "$h" -lt 64 ]; then
        continue
    fi
    cp "$f" "$dir/images.tmp/skimage-$b"
done

# MATE's wallpapers: large JPEG photos (up to 5640x3172) and PNG artwork.
mb="$dir/root/usr/share/backgrounds/mate"
[ -d "$mb" ] || die "backgrounds not found in mate-backgrounds (layout changed?)"
for f in "$mb"/*/*.jpg "$mb"/*/*.png; do
    [ -f "$f" ] || continue
    sub=$(basename "$(dirname "$f")")
    cp "$f" "$dir/images.tmp/mate-$sub-$(basename "$f")"
done

n=$(ls "$dir/images.tmp" | wc -l)
[ "$n" -gt 0 ] || die "no images collected"

# 640x480-class JPEG re-encodes: scaled down (never up) to fit in 640x480 with
# the aspect ratio kept, even dimensions, 4:2:0 chroma, quality scale 3
# (roughly libjpeg quality 90). Alpha is dropped by the conversion to YUV.
log "re-encoding $n images to jpeg640/"
for f in "$dir"/images.tmp/*; do
    b=$(basename "$f")
    out="$dir/jpeg640.tmp/${b%.*}.jpg"
    ffmpeg -nostdin -hide_banner -loglevel error -y -i "$f" \
        -vf "scale=w='min(640,iw)':h='min(480,ih)':force_original_aspect_ratio=decrease:force_divisible_by=2:flags=bicubic,format=yuvj420p" \
        -frames:v 1 -update 1 -q:v 3 "$out" ||
        die "ffmpeg failed on $b"
done

{
    echo "# cordon image corpus v$CORPUS_VERSION, built $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    for deb in "$dir"/debs/*.deb; do
        echo "# package $(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version)"
    done
    echo "# name bytes WxH"
    for sub in images jpeg640; do
        for f in "$dir/$sub.tmp"/*; do
            wh=$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height \
                -of csv=p=0 "$f" | tr , x)
            echo "$sub/$(basename "$f") $(wc -c <"$f") $wh"
        done
    done
} >"$dir/MANIFEST.tmp"

rm -rf "$dir/images" "$dir/jpeg640"
mv "$dir/images.tmp" "$dir/images"
mv "$dir/jpeg640.tmp" "$dir/jpeg640"
mv "$dir/MANIFEST.tmp" "$dir/MANIFEST"
# The unpacked tree is only an intermediate; the .debs stay as the cache.
rm -rf "$dir/root"
touch "$stamp"
log "$n images in $dir/images, $(ls "$dir/jpeg640" | wc -l) in $dir/jpeg640"
echo "$dir"
