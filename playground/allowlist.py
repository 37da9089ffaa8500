"""The sandbox vocabulary: every torch / nn / F / optim name and Tensor attribute user code may reach.

Anything not listed here is unreachable: the evaluator never calls getattr with a name it has not found
in these sets, and names starting with "_" are refused before they are looked up. Deliberately absent:
torch.load/save/from_file/hub/ops/_C/utils, Tensor.numpy/tofile/apply_/map_/register_hook/storage/
untyped_storage/data_ptr/set_/share_memory_/pin_memory, torch.empty* (uninitialised memory could show
bytes of an earlier request), Module.apply/register_*_hook/load_state_dict, and every builtin that can
reach an object's insides (getattr, type, vars, dir, eval, exec, open, __import__, globals...).
"""
from __future__ import annotations

# torch.<name>(...) that create a tensor from sizes/data: the dry run passes device="meta" to them.
TORCH_FACTORIES = frozenset({
    "ones", "zeros", "rand", "randn", "randint", "randperm", "arange", "linspace", "logspace", "eye", "full",
    "tensor", "as_tensor",
})
# torch.<name>(...) that take tensors (their dry run uses meta copies of the inputs).
TORCH_OPS = frozenset({
    "ones_like", "zeros_like", "rand_like", "randn_like", "full_like",
    "add", "sub", "mul", "div", "true_divide", "floor_divide", "remainder", "pow", "neg", "abs", "exp", "log",
    "log2", "log10", "log1p", "sqrt", "rsqrt", "square", "sin", "cos", "tan", "tanh", "sigmoid", "relu", "sign",
    "floor", "ceil", "round", "trunc", "clamp", "clip", "maximum", "minimum", "lerp", "reciprocal",
    "mm", "matmul", "bmm", "mv", "dot", "outer", "einsum", "addmm", "t", "transpose", "permute", "reshape",
    "flatten", "squeeze", "unsqueeze", "cat", "concat", "stack", "hstack", "vstack", "chunk", "split", "narrow",
    "flip", "roll", "tril", "triu", "diag", "diagonal", "trace", "where", "masked_fill", "gather",
    "index_select", "take", "broadcast_to", "broadcast_tensors",
    "sum", "mean", "std", "var", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "cumsum", "cumprod",
    "norm", "dist", "logsumexp", "softmax", "log_softmax", "sort", "argsort", "topk", "kthvalue", "median",
    "mode", "unique", "nonzero", "count_nonzero", "any", "all", "allclose", "isclose", "equal",
    "eq", "ne", "gt", "ge", "lt", "le", "isnan", "isinf", "isfinite", "numel", "is_tensor",
    "manual_seed", "is_grad_enabled", "get_default_dtype",
})
TORCH_DTYPES = frozenset({
    "float32", "float64", "float16", "bfloat16", "float", "double", "half", "int64", "int32", "int16", "int8",
    "uint8", "long", "int", "short", "bool", "complex64", "cfloat",
})
TORCH_OTHER = frozenset({"device"})  # torch.device("cpu"): a harmless value object

# Tensor methods (called through a bound wrapper) and plain attributes (read only).
TENSOR_METHODS = frozenset({
    "add", "sub", "mul", "div", "pow", "neg", "abs", "exp", "log", "sqrt", "square", "sin", "cos", "tanh",
    "sigmoid", "relu", "sign", "floor", "ceil", "round", "clamp", "clip", "reciprocal", "maximum", "minimum",
    "mm", "matmul", "bmm", "mv", "dot", "outer", "t", "transpose", "permute", "reshape", "view", "view_as",
    "reshape_as", "expand", "expand_as", "repeat", "flatten", "squeeze", "unsqueeze", "flip", "roll", "tril",
    "triu", "diag", "chunk", "split", "narrow", "masked_fill", "gather", "index_select", "contiguous", "clone",
    "detach", "sum", "mean", "std", "var", "prod", "max", "min", "amax", "amin", "argmax", "argmin", "cumsum",
    "norm", "logsumexp", "softmax", "log_softmax", "sort", "argsort", "topk", "unique", "nonzero", "any",
    "all", "allclose", "equal", "eq", "ne", "gt", "ge", "lt", "le", "isnan", "size", "dim", "numel",
    "stride", "is_contiguous", "is_floating_point", "element_size", "item", "tolist",
    "to", "cpu", "float", "double", "half", "long", "int", "bool", "type_as",
    "backward", "requires_grad_", "retain_grad", "zero_", "fill_", "add_", "sub_", "mul_", "div_", "clamp_",
    "relu_", "normal_", "uniform_",
})
TENSOR_PROPS = frozenset({
    "shape", "dtype", "device", "requires_grad", "grad", "grad_fn", "is_leaf", "ndim", "T", "mT", "data",
    "real", "imag",
})
RETURN_TYPE_PROPS = frozenset({"values", "indices"})  # torch.return_types.max(values=..., indices=...)

# nn.<Class>(...) layers and losses; torch.nn.functional as F; optim.<Class>.
NN_MODULES = frozenset({
    "Linear", "Bilinear", "ReLU", "LeakyReLU", "GELU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Identity",
    "Flatten", "Dropout", "Sequential", "Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm1d",
    "LayerNorm", "Embedding", "MSELoss", "L1Loss", "SmoothL1Loss", "CrossEntropyLoss", "NLLLoss", "BCELoss",
    "BCEWithLogitsLoss",
})
F_FUNCS = frozenset({
    "relu", "leaky_relu", "gelu", "sigmoid", "tanh", "softmax", "log_softmax", "linear", "dropout",
    "mse_loss", "l1_loss", "smooth_l1_loss", "cross_entropy", "nll_loss", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "one_hot", "normalize", "pad", "conv1d", "conv2d", "max_pool2d",
    "avg_pool2d",
})
OPTIMIZERS = frozenset({"SGD", "Adam", "AdamW", "RMSprop", "Adagrad"})
MODULE_ATTRS = frozenset({
    "weight", "bias", "parameters", "zero_grad", "train", "eval", "in_features", "out_features",
    "requires_grad_", "training",
})
OPTIM_METHODS = frozenset({"step", "zero_grad"})

# Safe Python builtins (wrapped; min/max refuse tensors so they cannot iterate a huge one element by element).
BUILTINS = frozenset({"abs", "min", "max", "round", "float", "int", "bool", "len", "print"})

# Calls that neither allocate an output sized by their arguments nor can run on meta copies.
NO_DRY_RUN = frozenset({
    "backward", "retain_grad", "requires_grad_", "item", "tolist", "size", "dim", "numel", "stride",
    "is_contiguous", "is_floating_point", "element_size", "manual_seed", "is_grad_enabled",
    "get_default_dtype", "is_tensor", "allclose", "equal", "device", "zero_grad", "step", "parameters",
    "train", "eval",
})
FORBIDDEN_KWARGS = frozenset({"out", "pin_memory", "generator"})
