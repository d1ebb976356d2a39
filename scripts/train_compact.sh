#!/usr/bin/env bash
# Rebuild the bundled ouie-compact's recipe: teacher cache, four source-disjoint
# builds (for the yardstick and the thresholds), the final build on every source, thresholds
# from a false-alarm rate measured out of source, the source-disjoint figures, the data card.
#
#   bash scripts/train_compact.sh [WORK_DIR]      # default WORK_DIR: ~/.cache/ouie/train
#
# Needs ../shared (data and the teachers' model files) and the train extra (torch). Never run
# in CI: about 15 min of one core per build on a 2-core machine, 1 h 15 min in all with two
# builds at a time. Every intermediate file stays in WORK_DIR, outside the repository.
# The same recipe, not the same bytes: onnxruntime's mn04 scores move in the fifth decimal with
# the machine and thread count, and that is enough to give another model of the same quality
# range (docs/eval.md, session 9: 0.195 against 0.275 recall at 2 % false clips).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${OUIE_SHARED:-../shared}
WORK=${1:-${HOME}/.cache/ouie/train}
DATA=("$SHARED/data/dev" "$SHARED/data/extra")
MODELS="$SHARED/models"
mkdir -p "$WORK/builds"

# 1. Training-only positives and hard negatives from Debian's game-data packages (guns,
#    blasts, torcs' crashes and skids; doors, hammers, engines), four renderings each, and a
#    pool of up to 300 other sounds per package, unlabelled: learnt only through the
#    teachers' soft targets (ouie.train.game_audio; never measured on). Needs, as root:
#    apt-get install freedoom openarena-data torcs-data hedgewars-data bzflag-data \
#        chromium-bsu-data supertux-data warmux-data trigger-rally-data warzone2100-data
python3 -m ouie.train.game_audio --out "$WORK/games" --pool "$WORK/pool"

# 2. The teachers (YAMNet, mn04) on every window of every clip, on generated car alarms,
#    spray cans, crashes, sirens and backgrounds (ouie.train.synth), and on the game audio.
python3 -m ouie.train.teachers --data "${DATA[0]}" --data "${DATA[1]}" --data "$WORK/games" \
    --data "$WORK/pool" --synthetic "$WORK/synth" --synthetic-per-class 150 --seed 77 \
    --cache "$WORK/teachers" --models "$MODELS"
CACHES=(--cache "$WORK/teachers/dev.npz" --cache "$WORK/teachers/extra.npz"
        --cache "$WORK/teachers/synth.npz" --cache "$WORK/teachers/games.npz"
        --cache "$WORK/teachers/pool.npz")

# 3. Source-disjoint builds: each leaves a group of recording sources out (build.json says
#    which); ouie eval --split source scores every source with the build that never heard it.
declare -A SOURCE_GROUPS=(
  [A]="gabemagee/gunshot_detection caneuro/caneuro.github.io AssafAssaf/GlassBreakageDetector"
  [B]="IrakizaGaius/Surveillance_Model_MLOP RedundantC/wis_part1"
  [C]="prathambansal-swaja/Glass_break_sound_classification_using_transfer_learning devi-harikaa/scream-detector-project anadrakou/Human_Scream_Detection"
  [D]="caitlinnguyen0/ESC-50 RosameliaCarioni/gunshot_detection sebastian-software/cuttledoc DK004/sukoon Fris0uman/CDDA-Soundpacks MrCrayfish/MrCrayfishVehicleMod adevrimk/focusflow agateau/pixelwheels mikebouwmans/dusktide-cast rafaelmardojai/blanket xenosnikos/backsounds"
)
build() {  # name, then the sources to leave out
  local name=$1; shift
  local excluded=()
  for source in "$@"; do excluded+=(--exclude-source "$source"); done
  python3 -m ouie.train.distill "${CACHES[@]}" --models "$MODELS" --logit-weight 0.1 \
      --teacher-positive 0.2 \
      --out "$WORK/builds/$name" "${excluded[@]}" > "$WORK/builds/$name.log" 2>&1
}
# shellcheck disable=SC2086  # the groups are space-separated source lists
{ build A ${SOURCE_GROUPS[A]} & build B ${SOURCE_GROUPS[B]} & wait; }
# shellcheck disable=SC2086
{ build C ${SOURCE_GROUPS[C]} & build D ${SOURCE_GROUPS[D]} & wait; }
mkdir -p "$WORK/loso"
for g in A B C D; do ln -sfn "$WORK/builds/$g" "$WORK/loso/$g"; done

# 4. The shipped model: every source.
build final

# 5. Thresholds: per label, the lowest one at which the node's event logic raises at most 72
#    false alarms per day (3 per hour) on all non-target audio, each clip scored by the build
#    that left its source out (docs/eval.md). The cascade's the same way, its gate from those
#    builds.
for backend in compact cascade; do
  family=$([ "$backend" = compact ] && echo ouie-compact || echo cascade)
  ouie eval tune --split source --data "${DATA[0]}" --data "${DATA[1]}" --backend "$backend" \
      --builds "$WORK/loso" --negatives all --max-false-per-day 72 \
      --json "$WORK/tune-$backend.json" \
      --write-thresholds "src/ouie/node/classifiers/tuned/$family.json"
done

# 6. The yardstick, then the model, its data card and the list of every training file.
for backend in compact cascade; do
  ouie eval --split source --data "${DATA[0]}" --data "${DATA[1]}" --backend "$backend" \
      --builds "$WORK/loso" --json "$WORK/loso-$backend.json"
done
cp "$WORK/builds/final/ouie_compact.onnx" "$WORK/builds/final/ouie_compact.sha256" \
   src/ouie/models_bundled/
python3 -m ouie.train.distill_card --build "$WORK/builds/final" \
    --data "${DATA[0]}" --data "${DATA[1]}" --data "$WORK/synth" --data "$WORK/games" \
    --data "$WORK/pool" \
    --figures "$WORK/loso-compact.json" --figures "$WORK/loso-cascade.json" \
    --out src/ouie/models_bundled
echo "bundled: $(cut -c1-8 src/ouie/models_bundled/ouie_compact.sha256)"
