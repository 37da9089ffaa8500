"""Preset programs for the two sandbox tabs: the tutorial's section 2.1 (tensors) and 2.2 (autograd, Net)."""
from __future__ import annotations

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
}
DEFAULT_TENSOR = "Tutorial 2.1: all eight operations"
DEFAULT_AUTOGRAD = "Tutorial 2.2: Net + MSELoss + SGD"
