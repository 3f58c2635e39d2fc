#!/usr/bin/env bash
# Submits a LOSO run to Slurm: one array task per subject (tools/slurm/loso-fold.sbatch), then the evaluate job
# (tools/slurm/evaluate.sbatch) once all of them succeeded. Prints the two job ids.
#
# Usage: tools/slurm/submit.sh --data CACHE --run RUN [--folds N] [--microexpr CMD] [--sbatch "ARGS"] [-- TRAIN_ARGS...]
#   --data CACHE     preprocessed cache (microexpr preprocess / synth / demo)
#   --run RUN        run folder, on a file system every node sees; resubmitting the same command resumes it
#   --folds N        number of folds (default: the number of subjects in CACHE/index.json)
#   --microexpr CMD  how to run the CLI on the nodes (default: microexpr, the installed .NET tool)
#   --sbatch ARGS    extra sbatch options for both jobs (partition, account, time limit, ...)
#   TRAIN_ARGS       train options shared by every fold, e.g. -- --model slstt-tiny --epochs 30 --device cuda
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
data="" run="" folds="" microexpr="microexpr" extra=""
while [ $# -gt 0 ]; do
    case "$1" in
        --data) data="$2"; shift 2 ;;
        --run) run="$2"; shift 2 ;;
        --folds) folds="$2"; shift 2 ;;
        --microexpr) microexpr="$2"; shift 2 ;;
        --sbatch) extra="$2"; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "submit.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$data" ] && [ -n "$run" ] || { echo "submit.sh: --data CACHE and --run RUN are required" >&2; exit 2; }
[ -f "$data/index.json" ] || { echo "submit.sh: $data/index.json not found: --data must be a preprocessed cache" >&2; exit 2; }
if [ -z "$folds" ]; then
    folds="$(grep -o '"subject": *"[^"]*"' "$data/index.json" | sort -u | wc -l)"
fi
[ "$folds" -ge 2 ] 2>/dev/null || { echo "submit.sh: $folds folds found in $data/index.json; LOSO needs at least 2 subjects" >&2; exit 2; }
data="$(cd "$data" && pwd)"
mkdir -p "$run/slurm"
run="$(cd "$run" && pwd)"
export MICROEXPR="$microexpr" MICROEXPR_DATA="$data" MICROEXPR_RUN="$run" MICROEXPR_TRAIN_ARGS="$*"
# shellcheck disable=SC2086
folds_job="$(sbatch --parsable --export=ALL --array="1-$folds" --output="$run/slurm/fold-%a.log" $extra "$here/loso-fold.sbatch")"
folds_job="${folds_job%%;*}"
# shellcheck disable=SC2086
eval_job="$(sbatch --parsable --export=ALL --dependency="afterok:$folds_job" --output="$run/slurm/evaluate.log" $extra "$here/evaluate.sbatch")"
eval_job="${eval_job%%;*}"
echo "folds: job $folds_job (array 1-$folds), evaluate: job $eval_job; logs in $run/slurm/"
