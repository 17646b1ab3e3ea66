#!/usr/bin/env bash
# Every row of gsenv's out-of-distribution suite through RLinf's evaluation runner, one run per row, as
# RLinf's `run_eval.sh mani-ood` runs its ManiSkill scenes (rl4vla's protocol): the in-distribution row
# (obj_set=train), then the 13 variants (obj_set=test). The rows are gsenv.tasks.ood.SUITE's
# (tests/test_rlinf_ood.py checks this list against it).
#
# Run it from the RLinf checkout, after copying maniskill_gsenv_ood_openpi_pi05_eval.yaml into
# evaluations/maniskill/ and gsenv_ood_template.yaml into examples/embodiment/config/env/:
#   CKPT_PATH=/path/to/checkpoint.pt bash /path/to/gsenv/examples/rlinf/run_gsenv_ood.sh [hydra overrides...]
# Extra arguments (e.g. rollout.model.model_path=..., env.eval.total_num_envs=64) go to every row; each
# row's logs go where run_eval.sh puts them (logs/<time>-<config>/), its id and obj_set in the command line.
set -euo pipefail
CONFIG=maniskill_gsenv_ood_openpi_pi05_eval
[ -f evaluations/run_eval.sh ] || { echo "run this from RLinf's checkout (evaluations/run_eval.sh not found)" >&2; exit 2; }
[ -f "evaluations/maniskill/$CONFIG.yaml" ] || { echo "copy $CONFIG.yaml into evaluations/maniskill/ first" >&2; exit 2; }
ROWS=(
  "GSEnv-PutCubeOnPlateMain-v0 train"
  "GSEnv-PutCubeOnPlateVisionImage-v0 test"
  "GSEnv-PutCubeOnPlateVisionTexture03-v0 test"
  "GSEnv-PutCubeOnPlateVisionTexture05-v0 test"
  "GSEnv-PutCubeOnPlateVisionWhole03-v0 test"
  "GSEnv-PutCubeOnPlateVisionWhole05-v0 test"
  "GSEnv-PutCubeOnPlateUnseenObjects-v0 test"
  "GSEnv-PutCubeOnPlateUnseenReceptacles-v0 test"
  "GSEnv-PutCubeOnPlateInstruct-v0 test"
  "GSEnv-PutCubeOnPlateMultiObject-v0 test"
  "GSEnv-PutCubeOnPlateMultiReceptacle-v0 test"
  "GSEnv-PutCubeOnPlatePosition-v0 test"
  "GSEnv-PutCubeOnPlateEEPose-v0 test"
  "GSEnv-PutCubeOnPlatePositionChangeTo-v0 test"
)
ckpt=()
if [ -n "${CKPT_PATH:-}" ]; then ckpt=("runner.ckpt_path=$CKPT_PATH"); fi
for row in "${ROWS[@]}"; do
  read -r env_id obj_set <<< "$row"
  echo "== gsenv ood row: $env_id (obj_set=$obj_set)"
  bash evaluations/run_eval.sh maniskill "$CONFIG" \
    "env.eval.init_params.id=$env_id" "env.eval.init_params.obj_set=$obj_set" "${ckpt[@]}" "$@"
done
