#!/usr/bin/env bash
# The league table: every method of the registry against every metric, on views of
# the bundled photos, Lite0 and Lite1, into one folder (default docs/league/cpu).
# Usage: bash benchmarks/league.sh [OUT] [VIEWS_LITE0] [VIEWS_LITE1] [SLOW_LITE0] [SLOW_LITE1]
# The slow perturbation methods (SHAP/LIME on superpixels, occlusion, the SmoothGrads)
# run on fewer views; every method is paired with IDG on the views both have.
set -euo pipefail
OUT=${1:-docs/league/cpu}
FAST=idg,ig,idg_uniform,idg_reference,left_ig,adaptive_ig,idgi,guided_ig,agi,blur_ig,blur_idg,gradient_shap,saliency,input_x_gradient,guided_backprop,lrp,deeplift
SLOW=idg,kernel_shap,lime,occlusion,smoothgrad:10,idg_smoothgrad:10
COMMON=(--views --metrics insertion,deletion,road,mprt --mprt-stages 2 --pixels-per-step 896
        --n-steps 50 --batch-size 5 --no-heatmaps --out "$OUT")
run() { python -m captum_idg.cli benchmark --models "$1" --methods "$2" --max-images "$3" "${COMMON[@]}"; }
run efficientnet_lite0 "$FAST" "${2:-5}"
run efficientnet_lite0 "$SLOW" "${4:-3}"
run efficientnet_lite1 "$FAST" "${3:-3}"
run efficientnet_lite1 "$SLOW" "${5:-2}"
