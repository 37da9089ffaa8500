"""Preset programs for the two sandbox tabs: the tutorial's section 2.1 (tensors) and 2.2 (autograd, Net), in the
restricted language's subset of Python (they run everywhere), and whole programs (PROGRAM_PRESETS: imports,
classes, loops, files; they need the fenced sandbox).

The presets are written with English comments (the API's defaults keep them); preset(name, language) gives a
preset with its comments in the visitor's language: each comment, or part of one, that is a COMMENT_KEYS entry's
English is replaced by the entry in that language. The code itself never changes (tests/test_sandbox_languages.py
checks both, and that no English comment is left in the Chinese presets)."""
from __future__ import annotations

import io
import tokenize
from functools import lru_cache

from core.i18n import DEFAULT, N_, catalogue, t

TUTORIAL_2_1 = """\
a = torch.ones(2, 3)   # a 2x3 tensor of ones
b = torch.rand(2, 3)   # a 2x3 tensor of uniform random numbers
c = a + b              # elementwise sum
d = torch.mm(a, b.T)   # matrix product: (2x3) @ (3x2); the tutorial's torch.mm(a, b) is a shape error
e = a ** 2             # square
f = c > 0              # where is c positive (a bool tensor)
g = a.view(-1)         # flatten to a vector
h = g * 2              # times 2, elementwise
"""

TENSOR_PRESETS = {
    "Tutorial 2.1: all eight operations": TUTORIAL_2_1,
    "ones": "a = torch.ones(2, 3)\na",
    "rand": "torch.manual_seed(0)\nb = torch.rand(2, 3)\nb",
    "+ (elementwise)": "a = torch.ones(2, 3)\nb = torch.rand(2, 3)\nc = a + b",
    "mm: the tutorial's shape error": ("a = torch.ones(2, 3)\nb = torch.rand(2, 3)\n"
                                       "# (2x3) @ (2x3): the inner sizes 3 and 2 differ\nd = torch.mm(a, b)"),
    "mm: fixed with b.T": "a = torch.ones(2, 3)\nb = torch.rand(2, 3)\nd = torch.mm(a, b.T)   # (2x3) @ (3x2) -> (2x2)",
    "** (power)": "a = torch.ones(2, 3)\ne = a ** 2\ntorch.arange(6.0).view(2, 3) ** 2",
    "> (comparison)": "c = torch.randn(2, 3)\nf = c > 0\nc[f]",
    "view": "a = torch.arange(6.0).view(2, 3)\ng = a.view(-1)\nh = a.t()\nh.is_contiguous()",
    "* (scale)": "g = torch.ones(6)\nh = g * 2",
    "broadcasting": "col = torch.arange(3.0).view(3, 1)\nrow = torch.arange(4.0)\ncol + row   # (3,1) + (4,) -> (3,4)",
    "indexing and slicing": "x = torch.arange(12).view(3, 4)\nx[0]\nx[:, 1]\nx[1:, ::2]\nx[x % 2 == 0]",
    "reductions": "x = torch.arange(12.0).view(3, 4)\nx.sum()\nx.mean(dim=0)\nx.max(dim=1)\nx.argmax()",
    "dtype casts and device": ("x = torch.tensor([1.7, -2.2, 3.9])\nx.int()\nx.to(torch.float64)\n"
                               "y = x.to(device)\ny.device"),
    "heatmap and histogram": "torch.manual_seed(0)\nw = torch.randn(8, 12)\nv = torch.randn(10000)",
}

# Whole programs (they need the fenced sandbox: imports, classes, loops, files). The tutorial's blocks as printed,
# and the programs a learner writes next.
TUTORIAL_2_1_AS_PRINTED = """\
import torch
a = torch.ones(2, 3) # 创建一个 2x3 的 tensor，元素都是 1
print(a)
b = torch.rand(2, 3) # 创建一个 2x3 的 tensor，元素是随机生成的
print(b)
c = a + b           # 按元素相加
d = torch.mm(a, b)   # 矩阵乘法 (the tutorial's line: a shape error, as Python shows; the fix is torch.mm(a, b.T))
e = a ** 2          # 平方
f = c > 0           # 大于零的位置索引
g = a.view(-1)      # 将 tensor 拉直为向量
h = g * 2           # 按元素乘 2
"""

PROGRAM_PRESETS = {
    "Tutorial 2.1 as printed (import, print, the mm error)": TUTORIAL_2_1_AS_PRINTED,
    "A model class and a training loop": """\
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)


class MLP(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.fc1 = nn.Linear(2, hidden)
        self.fc2 = nn.Linear(hidden, 2)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


x = torch.randn(200, 2)
y = (x[:, 0] * x[:, 1] > 0).long()       # XOR-like: a line cannot separate it, a hidden layer can
model = MLP()
opt = torch.optim.Adam(model.parameters(), lr=0.05)
for epoch in range(15):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    if epoch % 3 == 0:
        print(f"epoch {epoch:2d}  loss {loss.item():.4f}")
accuracy = (model(x).argmax(1) == y).float().mean()
print(f"accuracy {accuracy:.1%}")
""",
    "Dataset + DataLoader (tutorial 2.5)": """\
import torch
from torch.utils.data import DataLoader, Dataset


class Squares(Dataset):
    \"\"\"x -> x ** 2 for x = 0..n-1\"\"\"
    def __init__(self, n):
        self.x = torch.arange(n, dtype=torch.float32)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.x[i] ** 2


torch.manual_seed(0)
trainloader = DataLoader(Squares(10), batch_size=4, shuffle=True, num_workers=2)
for xb, yb in trainloader:
    print(xb.tolist(), "->", yb.tolist())
""",
    "Save and load (tutorial 2.4)": """\
import torch
import torch.nn as nn

torch.manual_seed(0)
net = nn.Linear(3, 1)
PATH = "net.pt"                          # in your own folder; it stays for your visit
torch.save(net.state_dict(), PATH)       # 保存模型参数
net2 = nn.Linear(3, 1)
net2.load_state_dict(torch.load(PATH))   # 加载模型参数
print(torch.equal(net.weight, net2.weight), net2.weight)
torch.save({"epoch": 5, "model_state_dict": net.state_dict()}, "checkpoint.pt")
print(torch.load("checkpoint.pt")["epoch"])
""",
    "One-hot labels with numpy and scikit-learn (tutorial 4.1.2)": """\
import numpy as np
import torch.nn.functional as F
from sklearn.preprocessing import OneHotEncoder

label = np.array([[1], [2]])
labels = OneHotEncoder().fit_transform(label).toarray()
print(labels)
print(F.one_hot(torch.tensor([1, 2])))   # PyTorch's own: a column for every class 0..max
""",
    "torchvision transforms on a picture (tutorial 4.1.1, 4.2)": """\
import torch
from PIL import Image
from torchvision import transforms

img = Image.new("RGB", (64, 48), (200, 30, 30))
transform = transforms.Compose([transforms.Resize((224, 224)), transforms.ToTensor()])
x = transform(img)
print(x.shape, x.dtype, x.min().item(), x.max().item())
aug = transforms.Compose([transforms.RandomHorizontalFlip(), transforms.RandomCrop(32, padding=4)])
print(aug(img).size)
""",
    "A loss curve with matplotlib": """\
import matplotlib.pyplot as plt
import torch

torch.manual_seed(0)
w = torch.zeros(1, requires_grad=True)
opt = torch.optim.SGD([w], lr=0.1)
losses = []
for step in range(30):
    opt.zero_grad()
    loss = (w - 3) ** 2
    loss.backward()
    opt.step()
    losses.append(loss.item())
plt.plot(losses)
plt.xlabel("step")
plt.ylabel("loss")
plt.title("SGD on (w - 3)^2")
plt.show()
print(f"w = {w.item():.4f}")
""",
}

NET = """\
torch.manual_seed(0)
# The tutorial's Net: fc1 (3->5), ReLU, fc2 (5->1)
fc1 = nn.Linear(3, 5)
relu = nn.ReLU()
fc2 = nn.Linear(5, 1)
net = nn.Sequential(fc1, relu, fc2)
criterion = nn.MSELoss()
optimizer = optim.SGD(net.parameters(), lr=lr)   # lr comes from the slider
input = torch.randn(2, 3)
target = torch.randn(2, 1)
# step: the lines below are one training step (the Train button repeats them)
optimizer.zero_grad()
output = net(input)
loss = criterion(output, target)
loss.backward()    # backpropagation
optimizer.step()   # update the weights
"""

TUTORIAL_2_2_AS_PRINTED = """\
import torch.nn as nn
import torch.optim as optim

class Net(nn.Module):

    def __init__(self):
        super(Net, self).__init__()
        self.fc1 = nn.Linear(3, 5)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(5, 1)

    def forward(self, x):
        x = self.fc1(x)
        x = self.relu(x)
        x = self.fc2(x)
        return x

net = Net()
criterion = nn.MSELoss()
optimizer = optim.SGD(net.parameters(), lr=0.01)

input = torch.randn(2, 3)
target = torch.randn(2, 1)
output = net(input)
loss = criterion(output, target)
loss.backward()    # 反向传播
optimizer.step()   # 更新权重
"""

AUTOGRAD_PRESETS = {
    "Scalar chain rule": """\
x = torch.tensor(2.0, requires_grad=True)
y = x ** 2          # dy/dx = 2x = 4
z = torch.sin(y)    # dz/dx = cos(x^2) * 2x
z.backward()
x.grad
""",
    "(w*x + b).relu().sum()": """\
w = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
b = torch.tensor(0.5, requires_grad=True)
x = torch.tensor([2.0, 1.0, -1.0])
out = (w * x + b).relu().sum()
out.backward()
""",
    "softmax + cross-entropy": """\
logits = torch.tensor([[2.0, 0.5, -1.0]], requires_grad=True)
target = torch.tensor([0])
p = F.softmax(logits, dim=1)
loss = F.cross_entropy(logits, target)
loss.backward()     # grad = softmax(logits) - one_hot(target)
""",
    "Tutorial 2.2: Net + MSELoss + SGD": NET,
    "Tutorial 2.2 as printed (class Net)": TUTORIAL_2_2_AS_PRINTED,
}
WHOLE_PROGRAM_AUTOGRAD = {"Tutorial 2.2 as printed (class Net)"}
DEFAULT_TENSOR = "Tutorial 2.1: all eight operations"
DEFAULT_AUTOGRAD = "Tutorial 2.2: Net + MSELoss + SGD"

# Our presets' comments, by their catalogue keys (the tutorial's own comments are Chinese already)
COMMENT_KEYS = (
    N_("presets.comment.ones"), N_("presets.comment.rand"), N_("presets.comment.add"), N_("presets.comment.mm"),
    N_("presets.comment.square"), N_("presets.comment.positive"), N_("presets.comment.flatten"),
    N_("presets.comment.times_two"), N_("presets.comment.inner_sizes"), N_("presets.comment.as_printed_mm"),
    N_("presets.comment.xor"), N_("presets.comment.own_folder"), N_("presets.comment.one_hot"),
    N_("presets.comment.net"), N_("presets.comment.lr"), N_("presets.comment.step"),
    N_("presets.comment.backprop"), N_("presets.comment.update"),
)
ALL = {**TENSOR_PRESETS, **PROGRAM_PRESETS, **AUTOGRAD_PRESETS}


def _comments(code: str) -> list[tuple[int, int, str]]:
    """(line index, column, text after '#') of each comment in the code."""
    try:
        return [(tok.start[0] - 1, tok.start[1], tok.string[1:])
                for tok in tokenize.generate_tokens(io.StringIO(code).readline) if tok.type == tokenize.COMMENT]
    except (tokenize.TokenError, SyntaxError):
        return []


@lru_cache(maxsize=64)
def in_language(code: str, language: str = DEFAULT) -> str:
    """The code with our comments in `language` (the longest English entries first; the rest as written)."""
    if language == DEFAULT or not code:
        return code
    english = sorted(((catalogue(DEFAULT).get(k, ""), k) for k in COMMENT_KEYS), key=lambda e: -len(e[0]))
    lines = code.split("\n")
    for i, col, text in _comments(code):
        for words, key in english:
            if words and words in text:
                text = text.replace(words, t(key, language))
        lines[i] = lines[i][:col + 1] + text
    return "\n".join(lines)


def preset(name: str, language: str = DEFAULT) -> str:
    """A preset's code (any tab's) with its comments in `language`; "" for a name that is no preset."""
    return in_language(ALL.get(name, ""), language)
