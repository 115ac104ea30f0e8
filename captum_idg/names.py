"""The names of the benchmark's methods and metrics, without torch: the command line checks
them before torch loads, and the registry (:mod:`captum_idg.evaluation.methods`) and the
pipeline (:mod:`captum_idg.evaluation.pipeline`) are built on them."""

# one registry entry per name, in this order (captum_idg.evaluation.methods.METHODS)
METHOD_NAMES = ("idg", "idg_uniform", "idg_reference", "ig", "left_ig", "guided_ig", "agi",
                "adaptive_ig", "idgi", "blur_ig", "blur_idg", "saliency", "input_x_gradient",
                "guided_backprop", "occlusion", "gradient_shap", "kernel_shap", "lime", "lrp",
                "deeplift", "smoothgrad", "idg_smoothgrad")
PAPER_METHODS = ("idg", "ig", "left_ig", "guided_ig", "agi")
BENCHMARK_METHODS = PAPER_METHODS + ("idg_uniform", "idg_reference")
# the ablation that separates the method from the quadrature, next to the
# 50-step IDG (adaptive, uniform, reference) and IG of BENCHMARK_METHODS
ABLATION_EXTRA = ("idg_uniform:16", "idg_uniform:256", "ig:256")

METRIC_NAMES = ("insertion", "deletion", "road", "mprt")  # the order of results.csv's columns
DEFAULT_METRICS = ("insertion", "deletion", "road")  # mprt: `mprt_stages` more attributions
