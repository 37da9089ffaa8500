"""Whole programs a learner writes (the tutorial's sections 2.1 and 2.2 as printed, and a dozen of our own that
cover every item of issue #22's point 1), each run in the sandbox and under plain CPython for comparison."""
from __future__ import annotations

from playground.presets import TUTORIAL_2_2_AS_PRINTED

TUTORIAL_2_1 = """\
import torch
a = torch.ones(2, 3) # 创建一个 2x3 的 tensor，元素都是 1
print(a)
b = torch.rand(2, 3) # 创建一个 2x3 的 tensor，元素是随机生成的
print(b)
c = a + b           # 按元素相加
d = torch.mm(a, b)   # 矩阵乘法
e = a ** 2          # 平方
f = c > 0           # 大于零的位置索引
g = a.view(-1)      # 将 tensor 拉直为向量
h = g * 2           # 按元素乘 2
"""

# The tutorial's section 2.2 as printed: the preset the Autograd tab offers is the same text.
TUTORIAL_2_2 = TUTORIAL_2_2_AS_PRINTED

PROGRAMS = {
    "tutorial_2_1": TUTORIAL_2_1,
    "tutorial_2_2": TUTORIAL_2_2,
    "tutorial_2_2_printed": "torch.manual_seed(0)\n" + TUTORIAL_2_2 + "print(f'loss {loss.item():.6f}')\n"
                            "print(net.fc1.weight.grad.shape, net.fc2.bias)\n",
    "model_class_training_loop": """\
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)


class MLP(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.fc1 = nn.Linear(4, hidden)
        self.fc2 = nn.Linear(hidden, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


x = torch.randn(64, 4)
y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
model = MLP()
opt = torch.optim.Adam(model.parameters(), lr=0.05)
for epoch in range(5):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    print(f"epoch {epoch}: loss {loss.item():.4f}")
acc = (model(x).argmax(1) == y).float().mean()
print(f"accuracy {acc:.3f}", sum(p.numel() for p in model.parameters()))
""",
    "dataset_dataloader_workers": """\
import torch
from torch.utils.data import DataLoader, Dataset


class Squares(Dataset):
    def __init__(self, n):
        self.x = torch.arange(n, dtype=torch.float32)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.x[i] ** 2


g = torch.Generator().manual_seed(0)
loader = DataLoader(Squares(10), batch_size=4, shuffle=True, num_workers=2, generator=g)
for xb, yb in loader:
    print(xb.tolist(), yb.tolist())
print(len(loader), "batches")
""",
    "save_load_bytesio_and_file": """\
import io
import os
import torch
import torch.nn as nn

torch.manual_seed(1)
net = nn.Linear(3, 2)
buf = io.BytesIO()
torch.save(net.state_dict(), buf)
buf.seek(0)
state = torch.load(buf)
print(sorted(state), torch.equal(state["weight"], net.weight))
PATH = "model.pt"
torch.save({"epoch": 3, "model_state_dict": net.state_dict()}, PATH)
ckpt = torch.load(PATH)
net2 = nn.Linear(3, 2)
net2.load_state_dict(ckpt["model_state_dict"])
print(ckpt["epoch"], torch.equal(net2.bias, net.bias), os.path.exists(PATH))
""",
    "comprehensions_functools_itertools_collections": """\
import collections
import functools
import itertools
import math

squares = [i * i for i in range(6)]
evens = {i for i in squares if i % 2 == 0}
table = {k: v for k, v in zip("abc", itertools.count(10))}
total = functools.reduce(lambda a, b: a + b, squares)
pairs = list(itertools.combinations("xyz", 2))
counts = collections.Counter("mississippi")
Point = collections.namedtuple("Point", "x y")
print(squares, sorted(evens), table, total)
print(pairs, counts.most_common(2), Point(1, 2), math.sqrt(2))
print(f"{math.pi:.3f} {len(squares)=}")
""",
    "try_except_with_and_main": """\
import contextlib
import torch


class ShapeError(Exception):
    pass


@contextlib.contextmanager
def section(name):
    print("enter", name)
    try:
        yield name
    finally:
        print("leave", name)


def check(t):
    if t.dim() != 2:
        raise ShapeError(f"expected 2-D, got {t.dim()}-D")
    return t.shape


def main():
    with section("shapes") as s:
        for t in (torch.ones(2, 2), torch.ones(3)):
            try:
                print(s, check(t))
            except ShapeError as exc:
                print("caught:", exc)
            else:
                print("ok")
            finally:
                print("checked")


if __name__ == "__main__":
    main()
""",
    "numpy_sklearn_onehot": """\
import numpy as np
from sklearn.preprocessing import OneHotEncoder
import torch
import torch.nn.functional as F

label = np.array([[1], [2]])
labels = OneHotEncoder().fit_transform(label).toarray()
print(labels)
print(F.one_hot(torch.tensor([1, 2]), num_classes=3))
arr = np.arange(6).reshape(2, 3)
t = torch.from_numpy(arr)
print(t.dtype, t.sum().item(), (t.numpy() == arr).all())
""",
    "torchvision_transforms_pil_models": """\
import torch
import torchvision
from PIL import Image
from torchvision import transforms

img = Image.new("RGB", (40, 30), color=(255, 0, 0))
transform = transforms.Compose([transforms.Resize((24, 24)), transforms.ToTensor(),
                                transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
x = transform(img)
print(x.shape, x[0].mean().item(), x[1].mean().item())
flip = transforms.RandomHorizontalFlip(p=1.0)(img)
print(flip.size)
model = torchvision.models.resnet18(weights=None)
print(sum(p.numel() for p in model.parameters()))
""",
    "matplotlib_and_files": """\
import os
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

xs = torch.linspace(0, 6.28, 50)
plt.plot(xs.numpy(), torch.sin(xs).numpy(), label="sin")
plt.legend()
plt.title("a sine")
plt.savefig("sine.png")
print("saved", os.path.getsize("sine.png") > 1000, sorted(f for f in os.listdir(".") if f.endswith(".png")))
""",
    "safetensors_random_time": """\
import random
import time
import torch
from safetensors.torch import load_file, save_file

random.seed(3)
torch.manual_seed(3)
save_file({"w": torch.randn(2, 2)}, "w.safetensors")
w = load_file("w.safetensors")["w"]
t0 = time.perf_counter()
time.sleep(0.01)
print(random.randint(0, 100), w.shape, time.perf_counter() - t0 >= 0.01)
print(torch.rand(3))
""",
    "exception_in_a_function": """\
import torch

def ratio(a, b):
    return a / b

def run(values):
    out = []
    for v in values:
        out.append(ratio(10, v))
    return out

print(run([1, 2, 5]))
print(run([1, 0]))
""",
    "stdlib_files_tempfile_json_csv": """\
import csv
import json
import os
import tempfile
import warnings

with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
    json.dump({"a": 1}, f)
print(json.load(open(f.name)))
os.remove(f.name)
with open("rows.csv", "w", newline="") as fh:
    csv.writer(fh).writerows([[1, 2], [3, 4]])
print(list(csv.reader(open("rows.csv"))))
warnings.warn("printed on stderr, as under CPython")
print("done")
""",
    "name_error_and_f_strings": """\
x = 3
print(f"{x=} {x:>4} {x!r}")
print(undefined_name)
""",
}

# The lines a program marks as its own results (bare expressions) are shown, not printed: same stdout as CPython.
BARE_EXPRESSIONS = """\
import torch
t = torch.arange(6).view(2, 3)
t.sum()
print("printed")
t.T
"""
