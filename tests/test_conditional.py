"""Notebook 04 (conditional generation): its tests tell right from wrong, the held-out split is
the TA's, and the trusted evaluator (``autograder.evaluators.conditional``) grades what the models do with
the lab guide's formulas (``helpers.grades``).

In-process (``PLANTED``, the one table shape of ``tests/planted.py``): a test cell of the source
notebook (hidden tests included) runs in the reference namespace from ``load_solution`` with one
solution cell replaced by a planted mistake (the cell must fail) or another correct design (it
must pass); every entry is named for what it does. Through nbgrader: the two quality cells give
partial credit on the guide's scale, and models that ignore the label, do not train or use a
large code lose what they should.
"""
from __future__ import annotations

import warnings

import pytest
import torch

from autograder.evaluators import conditional
from autograder.course.config import REPO
from autograder.course.solutions import cell_source, load_solution
from planted import Table, answers, assert_graded, edited, own_solution, params
from helpers import data, grades

AID = "04_conditional_generation"
UNTIL = "cvae_loss"  # the `solution` fixture (conftest): the notebook up to this cell


@pytest.fixture(scope="module")
def trained(one_thread):
    """The notebook up to its evaluation, both models trained with the grading budget."""
    return load_solution(AID, until="evaluate")


# --- the unconditional VAE's cell (test_vae) ---------------------------------------------------

TWO_HEAD_VAE = '''
class VAE(nn.Module):
    """Another design: two hidden layers, separate heads, torch.distributions for the sample and the loss."""
    def __init__(self, latent_dim, width=256):
        super().__init__()
        self.latent_dim = latent_dim
        self.body = nn.Sequential(nn.Linear(784, width), nn.ELU(), nn.Linear(width, width), nn.ELU())
        self.mu, self.lv = nn.Linear(width, latent_dim), nn.Linear(width, latent_dim)
        self.dec = nn.Sequential(nn.Linear(latent_dim, width), nn.ELU(), nn.Linear(width, 784))

    def encode(self, x):
        h = self.body(x.reshape(-1, 784))
        return self.mu(h), self.lv(h)

    def decode(self, z):
        return self.dec(z)

    def forward(self, x):
        mu, logvar = self.encode(x)
        return self.decode(torch.distributions.Normal(mu, (0.5 * logvar).exp()).rsample()), mu, logvar

    def loss(self, x):
        logits, mu, logvar = self(x)
        q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
        kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(1).mean()
        rec = -torch.distributions.Bernoulli(logits=logits, validate_args=False).log_prob(x.reshape(-1, 784)).sum(1).mean()
        return kl + rec, kl, rec

    def reconstruct(self, x):
        return self.decode(self.encode(x)[0]).sigmoid().view(-1, 28, 28)

    def generate(self, y, n=None):
        if not isinstance(y, int) and n is not None and n != len(y):
            raise ValueError("n must be the number of labels")
        count = (1 if n is None else n) if isinstance(y, int) else len(y)
        return self.decode(torch.randn(count, self.latent_dim)).sigmoid().view(-1, 28, 28)
'''

BY_HAND_VAE = '''
class VAE(nn.Module):
    """Another design: flatten layers, a forward that does not call encode or decode, the KL in
    the other sign convention, log-sigmoids by hand, the noise from torch.distributions."""
    def __init__(self, latent_dim):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.Tanh(), nn.Linear(300, 2 * latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, 300), nn.Tanh(), nn.Linear(300, 784))
        self.prior = torch.distributions.Normal(0.0, 1.0)

    def encode(self, x):
        h = self.encoder(x)
        return h[:, :self.latent_dim], h[:, self.latent_dim:]

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        mu, logvar = self.encoder(x).split(self.latent_dim, dim=1)
        eps = self.prior.sample(mu.shape)
        return self.decoder(mu + eps * torch.exp(logvar / 2)), mu, logvar

    def loss(self, x):
        logits, mu, logvar = self.forward(x)
        x = x.flatten(1)
        kl = -0.5 * torch.sum(1 + logvar - mu ** 2 - torch.exp(logvar)) / len(x)
        rec = -torch.sum(x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)) / len(x)
        return rec + kl, kl, rec

    def reconstruct(self, x):
        mu, _ = self.encode(x)
        return torch.sigmoid(self.decode(mu)).view(len(x), 28, 28)

    def generate(self, y, n=None):
        if torch.is_tensor(y):
            if n is not None and n != y.numel():
                raise ValueError("one image per label")
            n = y.numel()
        z = self.prior.sample((n or 1, self.latent_dim))
        return torch.sigmoid(self.decode(z)).view(-1, 28, 28)
'''

SAMPLE = "z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)"
FORWARD = SAMPLE + "\n        return self.decode(z), mu, logvar"
KL = "kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()"
REC = 'rec = F.binary_cross_entropy_with_logits(logits, x.reshape(len(x), 784), reduction="none").sum(1).mean()'
RECONSTRUCT = "return torch.sigmoid(self.decode(self.encode(x)[0])).reshape(-1, 28, 28)"
Z = "z = torch.randn(count, self.latent_dim, device=next(self.parameters()).device)"
GENERATED = "return torch.sigmoid(self.decode(z)).reshape(-1, 28, 28)"


NO_GRADIENT = "nelbo detached (no gradient reaches the model)"


def vae(*changes: tuple[str, str]) -> str:
    return edited(cell_source(AID, "vae"), *changes)


VAES = {
    **own_solution(AID, "vae"),
    "two heads, torch.distributions": (True, TWO_HEAD_VAE),
    "flatten layers, KL and log-sigmoids by hand, prior.sample": (True, BY_HAND_VAE),
    # the constructor and shapes
    "latent_dim ignored by the constructor": (False, vae(("        self.latent_dim = latent_dim\n",
                                                          "        latent_dim = 20\n        self.latent_dim = latent_dim\n"))),
    "only (batch, 784) inputs": (False, vae(("self.enc(x.reshape(len(x), 784))", "self.enc(x)"))),
    # the sample forward draws
    "forward decodes mu (no sample)": (False, vae((FORWARD, "return self.decode(mu), mu, logvar"))),
    "noise scaled by exp(logvar)": (False, vae((SAMPLE, "z = mu + torch.exp(logvar) * torch.randn_like(mu)"))),
    "logvar used as a standard deviation in the sample": (False, vae((SAMPLE, "z = mu + logvar * torch.randn_like(mu)"))),
    "uniform noise": (False, vae((SAMPLE, "z = mu + torch.exp(0.5 * logvar) * torch.rand_like(mu)"))),
    "one noise vector for the whole batch": (False, vae((SAMPLE, "z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu[0])"))),
    "noise drawn once, in the constructor": (False, vae(
        ("        self.latent_dim = latent_dim\n", "        self.latent_dim = latent_dim\n        self.eps = torch.randn(latent_dim)\n"),
        (SAMPLE, "z = mu + torch.exp(0.5 * logvar) * self.eps"))),
    "detached sample": (False, vae((SAMPLE, "z = (mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)).detach()"))),
    NO_GRADIENT: (False, vae(("return kl + rec, kl, rec", "return (kl + rec).detach().requires_grad_(True), kl, rec"))),
    # the loss's terms and reductions
    "logvar used as a variance in the KL": (False, vae((KL, "kl = 0.5 * (mu.pow(2) + logvar - 1 - logvar.abs().log()).sum(1).mean()"))),
    "KL with + logvar": (False, vae((KL, "kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 + logvar).sum(1).mean()"))),
    "KL summed over the batch": (False, vae((KL, "kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum()"))),
    "KL averaged over the latent dimensions": (False, vae((KL, "kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean()"))),
    "KL by one Monte Carlo sample": (False, vae(
        (KL, "z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)\n        "
             "kl = (torch.distributions.Normal(mu, (0.5 * logvar).exp()).log_prob(z) - torch.distributions.Normal(0.0, 1.0).log_prob(z)).sum(1).mean()"))),
    "rec averaged over pixels": (False, vae((REC, "rec = F.binary_cross_entropy_with_logits(logits, x.reshape(len(x), 784))"))),
    "rec summed over the batch": (False, vae((REC, 'rec = F.binary_cross_entropy_with_logits(logits, x.reshape(len(x), 784), reduction="sum")'))),
    "rec with the wrong sign": (False, vae((REC, "rec = -" + REC[len("rec = "):]))),
    "rec against binarized images": (False, vae((REC, REC.replace("x.reshape(len(x), 784)", "(x.reshape(len(x), 784) > 0.5).float()")))),
    "rec against sampled binary images": (False, vae((REC, REC.replace("x.reshape(len(x), 784)", "torch.bernoulli(x.reshape(len(x), 784))")))),
    "sigmoid applied twice": (False, vae((REC, REC.replace("(logits,", "(torch.sigmoid(logits),")))),
    "rec averaged over two calls of forward": (False, vae((REC, f"{REC}\n        rec = (rec + {REC[len('rec = '):].replace('(logits,', '(self(x)[0],')}) / 2"))),
    "decode returns probabilities": (False, vae(
        ("return self.dec(z)", "return torch.sigmoid(self.dec(z))"),
        (REC, 'rec = F.binary_cross_entropy(logits, x.reshape(len(x), 784), reduction="none").sum(1).mean()'),
        (RECONSTRUCT, "return self.decode(self.encode(x)[0]).reshape(-1, 28, 28)"),
        (GENERATED, "return self.decode(z).reshape(-1, 28, 28)"))),
    # reconstruct and generate
    "reconstruct decodes a sample": (False, vae((RECONSTRUCT, "return torch.sigmoid(self(x)[0]).reshape(-1, 28, 28)"))),
    "reconstruct returns logits": (False, vae((RECONSTRUCT, "return self.decode(self.encode(x)[0]).reshape(-1, 28, 28)"))),
    "generate(k) ignores n": (False, vae(("count = 1 if n is None else n", "count = 1"))),
    "generate(labels, n) keeps len(labels) images for another n": (False, vae(('raise ValueError(f"n = {n} but {len(y)} labels")', "count = len(y)"))),
    "generate decodes z = 0": (False, vae((Z, Z.replace("torch.randn(", "torch.zeros(")))),
    "generate with standard deviation 0.5": (False, vae((Z, Z.replace("torch.randn(", "0.5 * torch.randn(")))),
    "generate draws one z for all images": (False, vae((Z, Z.replace("torch.randn(count,", "torch.randn(1,") + ".expand(count, -1)"))),
    "generate returns logits": (False, vae((GENERATED, "return self.decode(z).reshape(-1, 28, 28)"))),
}


# --- the CVAE's cell (test_cvae_interface) -----------------------------------------------------

EMBEDDING_CVAE = '''
class CVAE(nn.Module):
    """Another design: a learnt label embedding, two hidden layers, a softplus-free log-variance."""
    def __init__(self, latent_dim=8):
        super().__init__()
        self.latent_dim = latent_dim
        self.emb_e, self.emb_d = nn.Embedding(10, 16), nn.Embedding(10, 16)
        self.body = nn.Sequential(nn.Linear(784 + 16, 256), nn.ELU(), nn.Linear(256, 128), nn.ELU())
        self.mu, self.lv = nn.Linear(128, latent_dim), nn.Linear(128, latent_dim)
        self.dec = nn.Sequential(nn.Linear(latent_dim + 16, 128), nn.ELU(), nn.Linear(128, 256), nn.ELU(),
                                 nn.Linear(256, 784))

    def encode(self, x, y):
        h = self.body(torch.cat([x.flatten(1), self.emb_e(y)], -1))
        return self.mu(h), self.lv(h)

    def decode(self, z, y):
        return self.dec(torch.cat([z, self.emb_d(y)], -1))

    def reconstruct(self, x, y):
        return self.decode(self.encode(x, y)[0], y).sigmoid().view(len(x), 28, 28)

    def generate(self, y, n=None):
        if not isinstance(y, int) and n not in (None, len(y)):
            raise ValueError(f"{len(y)} labels, n = {n}")
        labels = torch.tensor([y] * (n or 1)) if isinstance(y, int) else y
        return self.decode(torch.randn(len(labels), self.latent_dim), labels).sigmoid().view(-1, 28, 28)
'''

EYE_CVAE = '''
class CVAE(nn.Module):
    """Another design: one-hot rows of an identity matrix, separate heads, the label added after
    the first layer of each network, z drawn with torch.distributions."""
    def __init__(self, latent_dim):
        super().__init__()
        self.latent_dim = latent_dim
        self.register_buffer("eye", torch.eye(10))
        self.x_in, self.y_in = nn.Linear(784, 256), nn.Linear(10, 256, bias=False)
        self.mu, self.logvar = nn.Linear(256, latent_dim), nn.Linear(256, latent_dim)
        self.z_in, self.y_out = nn.Linear(latent_dim, 256), nn.Linear(10, 256, bias=False)
        self.out = nn.Linear(256, 784)

    def encode(self, x, y):
        h = torch.relu(self.x_in(x.view(x.shape[0], -1)) + self.y_in(self.eye[y]))
        return self.mu(h), self.logvar(h)

    def decode(self, z, y):
        return self.out(torch.relu(self.z_in(z) + self.y_out(self.eye[y])))

    def reconstruct(self, x, y):
        return torch.sigmoid(self.decode(self.encode(x, y)[0], y)).view(-1, 28, 28)

    def generate(self, y, n=None):
        if isinstance(y, int):
            y = torch.tensor(y).repeat(1 if n is None else n)
        elif n is not None and n != y.shape[0]:
            raise ValueError("n must match the labels")
        z = torch.distributions.Normal(torch.zeros(self.latent_dim), 1.0).sample(y.shape)
        return torch.sigmoid(self.decode(z, y)).view(-1, 28, 28)
'''

ENCODE = "mu, logvar = self.enc(self._with_label(x.reshape(len(x), 784), y)).chunk(2, dim=1)"
DECODE = "return self.dec(self._with_label(z, y))"
CV_RECONSTRUCT = "return torch.sigmoid(self.decode(self.encode(x, y)[0], y)).reshape(-1, 28, 28)"
GEN_Z = "z = torch.randn(len(y), self.latent_dim, device=device)"
CV_GENERATED = "return torch.sigmoid(self.decode(z, y)).reshape(-1, 28, 28)"
BAD_N = 'raise ValueError(f"n = {n} but {len(y)} labels")'
ZEROS = "self._with_label(x.reshape(len(x), 784), torch.zeros_like(y))"


def cvae(*changes: tuple[str, str]) -> str:
    return edited(cell_source(AID, "cvae"), *changes)


CVAES = {
    **own_solution(AID, "cvae"),
    "label embedding, deeper": (True, EMBEDDING_CVAE),
    "rows of torch.eye added after the first layer, torch.distributions": (True, EYE_CVAE),
    # the constructor and shapes
    "latent_dim ignored by the constructor": (False, cvae(("        super().__init__()\n        self.latent_dim, self.classes",
                                                           "        super().__init__()\n        latent_dim = 4\n        self.latent_dim, self.classes"))),
    "only (batch, 784) inputs": (False, cvae(("self._with_label(x.reshape(len(x), 784), y)", "self._with_label(x, y)"))),
    "F.one_hot without num_classes": (False, cvae(("F.one_hot(y, self.classes)", "F.one_hot(y)"))),
    # the label in the encoder and the decoder
    "encoder ignores the label": (False, cvae(("self._with_label(x.reshape(len(x), 784), y)", ZEROS))),
    "encoder's mean ignores the label": (False, cvae((ENCODE, ENCODE.replace("mu, logvar = ", "_, logvar = ")
                                                      + f"\n        mu, _ = self.enc({ZEROS}).chunk(2, dim=1)"))),
    "encoder's log-variance ignores the label": (False, cvae((ENCODE, ENCODE.replace("mu, logvar = ", "mu, _ = ")
                                                              + f"\n        _, logvar = self.enc({ZEROS}).chunk(2, dim=1)"))),
    "decoder ignores the label": (False, cvae((DECODE, "return self.dec(self._with_label(z, torch.zeros_like(y)))"))),
    "decode returns probabilities": (False, cvae(
        (DECODE, "return torch.sigmoid(self.dec(self._with_label(z, y)))"),
        (CV_RECONSTRUCT, "return self.decode(self.encode(x, y)[0], y).reshape(-1, 28, 28)"),
        (CV_GENERATED, "return self.decode(z, y).reshape(-1, 28, 28)"))),
    # reconstruct
    "reconstruct adds noise": (False, cvae(("self.decode(self.encode(x, y)[0], y)",
                                            "self.decode(self.encode(x, y)[0] + torch.randn_like(self.encode(x, y)[0]), y)"))),
    "reconstruct decodes with label 0": (False, cvae((CV_RECONSTRUCT, CV_RECONSTRUCT.replace("[0], y)", "[0], torch.zeros_like(y))")))),
    "reconstruct returns logits": (False, cvae((CV_RECONSTRUCT, "return self.decode(self.encode(x, y)[0], y).reshape(-1, 28, 28)"))),
    "reconstruct returns (batch, 784)": (False, cvae((CV_RECONSTRUCT, "return torch.sigmoid(self.decode(self.encode(x, y)[0], y))"))),
    # generate: the noise, the labels, n, the shapes
    "generate decodes z = 0": (False, cvae((GEN_Z, GEN_Z.replace("torch.randn(", "torch.zeros(")))),
    "generate with uniform noise": (False, cvae((GEN_Z, GEN_Z.replace("torch.randn(", "torch.rand(")))),
    "generate with standard deviation 0.5": (False, cvae((GEN_Z, GEN_Z.replace("torch.randn(", "0.5 * torch.randn(")))),
    "generate draws one z for all images": (False, cvae((GEN_Z, GEN_Z.replace("torch.randn(len(y),", "torch.randn(1,") + ".expand(len(y), -1)"))),
    "generate reseeds the noise": (False, cvae((GEN_Z, "torch.manual_seed(0)\n        " + GEN_Z))),
    "generate returns logits": (False, cvae((CV_GENERATED, "return self.decode(z, y).reshape(-1, 28, 28)"))),
    "generate(k) without n returns (28, 28)": (False, cvae((CV_GENERATED, CV_GENERATED + ".squeeze(0)"))),
    "generate(k) ignores n": (False, cvae(("y = torch.full((1 if n is None else n,), y, dtype=torch.long)",
                                           "y = torch.full((1,), y, dtype=torch.long)"))),
    "generate(labels, n) keeps len(labels) images for another n": (False, cvae((BAD_N, "pass"))),
    "generate(labels, n) cuts the labels to n": (False, cvae((BAD_N, "y = y[:n]"))),
    "generate ignores the label": (False, cvae((CV_GENERATED, CV_GENERATED.replace("(z, y)", "(z, torch.zeros_like(y))")))),
    "generate decodes the next label": (False, cvae((CV_GENERATED, CV_GENERATED.replace("(z, y)", "(z, (y + 1) % 10)")))),
}


# --- the loss cell (test_cvae_loss) ------------------------------------------------------------

LOSS = "def cvae_loss(model, x, y):\n    x = x.reshape(len(x), 784)\n    mu, logvar = model.encode(x, y)\n{}\n"
KL_OK = "    kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1).mean()\n"
Z_OK = "mu + (0.5 * logvar).exp() * torch.randn_like(mu)"
BCE = 'F.binary_cross_entropy_with_logits({}, x, reduction="none").sum(1).mean()'


def loss_body(kl: str = KL_OK, z: str = Z_OK, rec: str = BCE.format("model.decode(z, y)")) -> str:
    """A loss body with one part changed: ``kl`` (a line), the sample ``z``, the ``rec`` expression."""
    return f"{kl}    z = {z}\n    rec = {rec}\n    return kl + rec, kl, rec"


LOSSES = {
    **own_solution(AID, "cvae_loss"),
    # the loss cell's tests call the student's own CVAE: another design must pass too
    "the reference loss, a label embedding CVAE": (True, EMBEDDING_CVAE),
    **answers(LOSS, {
        "torch.distributions": (True, """
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(1).mean()
    logits = model.decode(q.rsample(), y)
    rec = -torch.distributions.Bernoulli(logits=logits, validate_args=False).log_prob(x).sum(1).mean()
    return kl + rec, kl, rec"""),
        "logsigmoid by hand": (True, """
    kl = -0.5 * torch.sum(1 + logvar - mu ** 2 - torch.exp(logvar), dim=1).mean()
    l = model.decode(mu + torch.randn_like(logvar) * torch.exp(logvar / 2), y)
    rec = -(x * F.logsigmoid(l) + (1 - x) * F.logsigmoid(-l)).sum(1).mean()
    return kl + rec, kl, rec"""),
        "standard deviation first, sums divided by the batch size": (True, """
    std = torch.exp(0.5 * logvar)
    kl = (std ** 2 / 2 + mu ** 2 / 2 - 0.5 - torch.log(std)).sum() / x.shape[0]
    eps = torch.empty_like(std).normal_()
    rec = F.binary_cross_entropy_with_logits(model.decode(mu + std * eps, y), x, reduction="sum") / x.shape[0]
    return kl + rec, kl, rec"""),
        # the noise and the sample
        "logvar used as a standard deviation": (False, loss_body(
            kl="    kl = 0.5 * (mu ** 2 + logvar ** 2 - 1 - torch.log(logvar ** 2)).sum(1).mean()\n",
            z="mu + logvar * torch.randn_like(mu)")),
        "logvar used as a log standard deviation": (False, loss_body(
            kl="    kl = 0.5 * (mu ** 2 + (2 * logvar).exp() - 1 - 2 * logvar).sum(1).mean()\n",
            z="mu + logvar.exp() * torch.randn_like(mu)")),
        "noise scaled by exp(logvar)": (False, loss_body(z="mu + logvar.exp() * torch.randn_like(mu)")),
        "no sample (decodes mu)": (False, loss_body(z="mu")),
        "detached sample": (False, loss_body(z=f"({Z_OK}).detach()")),
        NO_GRADIENT: (False, loss_body().replace("return kl + rec,", "return (kl + rec).detach().requires_grad_(True),")),
        "uniform noise": (False, loss_body(z=Z_OK.replace("randn_like", "rand_like"))),
        "one noise vector for the whole batch": (False, loss_body(z=Z_OK.replace("randn_like(mu)", "randn_like(mu[0])"))),
        "reseeds the noise": (False, loss_body(kl=KL_OK + "    torch.manual_seed(0)\n")),
        "mean of two samples": (False, loss_body(rec="(" + BCE.format("model.decode(z, y)") + " + "
                                                 + BCE.format(f"model.decode({Z_OK}, y)") + ") / 2")),
        # the terms, signs and reductions
        "KL with + logvar": (False, loss_body(kl="    kl = 0.5 * (mu ** 2 + logvar.exp() - 1 + logvar).sum(1).mean()\n")),
        "KL summed over the batch": (False, loss_body(kl="    kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum()\n")),
        "KL averaged over the latent dimensions": (False, loss_body(kl="    kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).mean()\n")),
        "KL by one Monte Carlo sample": (False, """
    z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
    kl = (-0.5 * logvar - 0.5 * (z - mu) ** 2 / logvar.exp() + 0.5 * z ** 2).sum(1).mean()
    rec = F.binary_cross_entropy_with_logits(model.decode(z, y), x, reduction="none").sum(1).mean()
    return kl + rec, kl, rec"""),
        "rec averaged over pixels": (False, loss_body(rec='F.binary_cross_entropy_with_logits(model.decode(z, y), x)')),
        "rec summed over the batch": (False, loss_body(rec='F.binary_cross_entropy_with_logits(model.decode(z, y), x, reduction="sum")')),
        "rec with the wrong sign": (False, loss_body(rec="-" + BCE.format("model.decode(z, y)"))),
        "rec against binarized images": (False, loss_body(rec=BCE.format("model.decode(z, y)").replace(", x,", ", (x > 0.5).float(),"))),
        "rec against sampled binary images": (False, loss_body(rec=BCE.format("model.decode(z, y)").replace(", x,", ", torch.bernoulli(x),"))),
        "sigmoid applied twice": (False, loss_body(rec=BCE.format("torch.sigmoid(model.decode(z, y))"))),
        "decoder given label 0": (False, loss_body(rec=BCE.format("model.decode(z, torch.zeros_like(y))"))),
    }),
}


# --- the unconditional VAE ignores the label (test_vae_ignores_label) --------------------------

def relabelled_vae(body: str) -> str:
    """A student cell that swaps the trained ``vae`` for one whose ``generate`` is ``body``."""
    return f'''
class Relabelled(type(vae)):
    def generate(self, y, n=None):
{body}
relabelled = Relabelled(vae.latent_dim)
relabelled.load_state_dict(vae.state_dict())
vae = relabelled.eval()
'''


VAE_LABELS = {
    "the notebook's model, unchanged": (True, ""),
    "generate through a label-free helper": (True, relabelled_vae(
        "        count = len(y) if not isinstance(y, int) else (n or 1)\n"
        "        return torch.sigmoid(self.decode(torch.randn(count, self.latent_dim))).view(-1, 28, 28)")),
    "generate with torch.distributions": (True, relabelled_vae(
        "        count = y.numel() if torch.is_tensor(y) else (n or 1)\n"
        "        z = torch.distributions.Normal(0.0, 1.0).sample((count, self.latent_dim))\n"
        "        return self.decode(z).sigmoid().view(-1, 28, 28)")),
    "the CVAE handed in as the VAE": (False, "vae = cvae"),
    "codes shifted by the label": (False, relabelled_vae(
        "        y = torch.full((n or 1,), y) if isinstance(y, int) else y\n"
        "        z = torch.randn(len(y), self.latent_dim) + 0.01 * y[:, None]\n"
        "        return torch.sigmoid(self.decode(z)).view(-1, 28, 28)")),
    "noise seeded by the label": (False, relabelled_vae(
        "        y = torch.full((n or 1,), y) if isinstance(y, int) else y\n"
        "        torch.manual_seed(int(y[0]))\n"
        "        return torch.sigmoid(self.decode(torch.randn(len(y), self.latent_dim))).view(-1, 28, 28)")),
}


# --- section 8's Gaussian decoder (test_gaussian_nll) ------------------------------------------

GAUSS = "import math\ndef gaussian_nll(x, mean, variance):\n    {}\n"
VAR = "variance = torch.as_tensor(variance, dtype=x.dtype)\n    "
SQ = "(x - mean).pow(2).sum(-1)"
D = "x.shape[-1]"


def nll(squared: str = SQ + " / (2 * variance)", constant: str = f"0.5 * {D} * torch.log(2 * math.pi * variance)",
        reduce: str = ".mean()") -> str:
    return VAR + f"return ({squared} + {constant}){reduce}"


GAUSSES = {**own_solution(AID, "gaussian_nll"), **answers(GAUSS, {
    "torch.distributions.Normal": (True, "std = torch.as_tensor(variance).sqrt()\n"
                                         "    return -torch.distributions.Normal(mean, std).log_prob(x).sum(-1).mean()"),
    "F.gaussian_nll_loss(full=True), summed, over the batch size": (
        True, "var = torch.as_tensor(variance, dtype=x.dtype).expand_as(x)\n"
              "    return F.gaussian_nll_loss(mean, x, var, full=True, reduction='sum') / len(x)"),
    "per pixel through the log-variance, then the sums": (
        True, VAR + "logvar = variance.log()\n"
                    "    per_pixel = 0.5 * ((x - mean) ** 2 / logvar.exp() + logvar + math.log(2 * math.pi))\n"
                    "    return per_pixel.sum(1).mean()"),
    "D * MSE / (2 sigma^2) plus the constant": (
        True, VAR + f"return {D} * F.mse_loss(mean, x, reduction='none').mean(-1).mean() / (2 * variance) "
                    f"+ {D} / 2 * torch.log(2 * torch.pi * variance)"),
    "variance read as a standard deviation": (False, nll(SQ + " / (2 * variance ** 2)",
                                                         f"0.5 * {D} * torch.log(2 * math.pi * variance ** 2)")),
    "variance read as a log-variance": (False, nll(SQ + " / (2 * variance.exp())", f"0.5 * {D} * (math.log(2 * math.pi) + variance)")),
    "constant left out": (False, VAR + f"return ({SQ} / (2 * variance)).mean()"),
    "constant without 2 pi": (False, nll(constant=f"0.5 * {D} * torch.log(variance)")),
    "constant once, not D times": (False, nll(constant="0.5 * torch.log(2 * math.pi * variance)")),
    "constant for 784 pixels whatever D": (False, nll(constant="0.5 * 784 * torch.log(2 * math.pi * variance)")),
    "no 1/2 on the squared error": (False, nll(SQ + " / variance")),
    "mean over the pixels": (False, VAR + f"return ((x - mean).pow(2) / (2 * variance) + 0.5 * torch.log(2 * math.pi * variance)).mean()"),
    "sum over the batch": (False, nll(reduce=".sum()")),
    "per image (batch,), not averaged": (False, nll(reduce="")),
    "the log-density (wrong sign)": (False, VAR + f"return -({SQ} / (2 * variance) + 0.5 * {D} * torch.log(2 * math.pi * variance)).mean()"),
    "math.log: no gradient for a learned variance": (False, VAR + f"return ({SQ} / (2 * variance) + 0.5 * {D} * math.log(2 * math.pi * float(variance))).mean()"),
    "the mean detached": (False, nll(f"(x - mean.detach()).pow(2).sum(-1) / (2 * variance)")),
})}


PLANTED: Table = {"test_vae": VAES, "test_cvae_interface": CVAES, "test_cvae_loss": LOSSES,
                  "test_vae_ignores_label": VAE_LABELS, "test_gaussian_nll": GAUSSES}


@pytest.mark.parametrize("test, right, answer", params(PLANTED))
def test_planted(request, test, right, answer):
    ns = request.getfixturevalue("trained" if test == "test_vae_ignores_label" else "solution")
    assert_graded(AID, ns, test, answer, right)


# --- the held-out split ---------------------------------------------------------------------------

def test_heldout_split_is_stratified_seeded_and_from_the_test_set(monkeypatch):
    x, y = conditional.heldout()
    assert x.shape == (1000, 28, 28) and y.tolist() == [k for k in range(10) for _ in range(100)]
    x_test, y_test = data.load("mnist", "test")
    x_train, _ = data.load("mnist", "train")
    rows = {bytes(r.numpy()) for r in (x_test * 255).round().to(torch.uint8)}
    assert all(bytes(r.numpy()) in rows for r in (x.reshape(-1, 784) * 255).round().to(torch.uint8)), "test images"
    train_rows = {bytes(r.numpy()) for r in (x_train[:20_000] * 255).round().to(torch.uint8)}
    assert not any(bytes(r.numpy()) in train_rows for r in (x.reshape(-1, 784) * 255).round().to(torch.uint8))
    assert torch.equal(conditional.heldout()[0], x), "the same split every time"
    monkeypatch.setenv(conditional.HELDOUT_ENV, "123")
    other, labels = conditional.heldout()
    assert torch.equal(labels, y) and not torch.equal(other, x), "the TA's seed picks another split"
    assert torch.equal(other, conditional.heldout(seed=123)[0])


def test_the_notebook_never_touches_the_test_set():
    import nbformat

    nb = nbformat.read(REPO / "notebooks" / AID / f"{AID}.ipynb", as_version=4)
    public = "\n".join(c.source.split("### BEGIN HIDDEN TESTS")[0] for c in nb.cells if c.cell_type == "code")
    assert '"test"' not in public and "fixed_test_subset" not in public and "heldout" not in public


# --- the trusted evaluator ------------------------------------------------------------------------

def test_reference_scores_on_two_heldout_splits(trained):
    """The reference, trained with the grading budget: full reconstruction points with a margin
    before the cap, and the generation points README reports (no model reaches 30)."""
    vae, cvae = trained["vae"], trained["cvae"]
    for seed in (None, 7):
        r = conditional.evaluate_reconstruction(vae, seed=seed)
        assert r.latent_dim == vae.latent_dim == 20 and r.points == 10.0, str(r)
        uncapped = (r.ssim * 5 + (0.1 - r.mse) * 50) * grades.compression_bonus(20)
        assert uncapped > 10.05, f"reconstruction is only just at the cap: {uncapped:.2f} ({r})"
        g = conditional.evaluate_generation(cvae, seed=seed)
        assert g.latent_dim == cvae.latent_dim == 4, str(g)
        assert 12.5 < g.points < 16, str(g)
        assert g.accuracy > 0.8, str(g)


def test_evaluator_agrees_with_the_notebooks_validation_figures(trained):
    r = conditional.evaluate_reconstruction(trained["vae"])
    g = conditional.evaluate_generation(trained["cvae"])
    assert abs(r.mse - trained["rec_mse"]) < 0.003 and abs(r.ssim - trained["rec_ssim"]) < 0.03
    assert abs(r.points - trained["rec_points"]) < 0.5
    assert abs(g.mse - trained["gen_mse"]) < 0.004 and abs(g.ssim - trained["gen_ssim"]) < 0.04
    assert abs(g.per_class_fid - trained["gen_fid"]) < 2.5 and abs(g.points - trained["gen_points"]) < 1.5
    assert abs(g.accuracy - trained["gen_acc"]) < 0.06
    assert conditional.evaluate_reconstruction(trained["vae"]) == r, "seeded: the same report every call"
    assert conditional.evaluate_generation(trained["cvae"]) == g, "seeded: the same report every call"


def test_evaluator_reads_the_code_size_off_the_encoder(trained):
    vae, cvae = trained["vae"], trained["cvae"]
    honest = conditional.evaluate_reconstruction(vae), conditional.evaluate_generation(cvae)
    vae.latent_dim, cvae.latent_dim = 1, 1  # claims the encoders do not keep
    try:
        assert (conditional.evaluate_reconstruction(vae), conditional.evaluate_generation(cvae)) == honest
    finally:
        vae.latent_dim, cvae.latent_dim = 20, 4


def test_generated_digits_are_compared_with_the_nearest_real_digit_of_their_class(trained):
    """What the generation grade's SSIM and MSE are taken against, checked on the evaluator's own
    samples: every reference is a held-out digit of the sample's class, and no held-out digit
    of that class is nearer."""
    x, y = conditional.heldout()
    cvae = trained["cvae"]
    z = torch.randn(len(y), 4, generator=torch.Generator().manual_seed(conditional.SAMPLE_SEED))
    fake = conditional.decoded(cvae, z, y)
    from helpers import metrics
    ref = metrics.nearest_in_class(fake, y, x, y)
    for k in (0, 7):
        pool = x[y == k].reshape(-1, 784).double()
        dist = torch.cdist(fake[y == k].reshape(-1, 784).double(), pool)
        assert torch.equal(ref[y == k].reshape(-1, 784), pool[dist.argmin(1)]), k
    g = conditional.evaluate_generation(cvae)
    assert g.mse == pytest.approx(float(metrics.mse(fake, ref).mean()), rel=1e-9)
    assert g.ssim == pytest.approx(float(metrics.ssim(fake, ref).mean()), rel=1e-9)
    assert g.points == pytest.approx(grades.generation_points(g.ssim, g.mse, g.per_class_fid, 4))


class Wrapper(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.latent_dim = inner, inner.latent_dim

    def encode(self, *args):
        return self.inner.encode(*args)

    def decode(self, *args):
        return self.inner.decode(*args)


class Memoriser(Wrapper):
    """Remembers the images it encoded and 'decodes' them: perfect reconstructions if trusted."""

    def encode(self, x, *y):
        self.last = x.reshape(len(x), 784)
        return super().encode(x, *y)

    def decode(self, z, *y):
        if getattr(self, "last", None) is not None and len(self.last) == len(z):
            return torch.logit(self.last.clamp(1e-4, 1 - 1e-4))
        return super().decode(z, *y)

    def reconstruct(self, x, *y):
        return x.reshape(-1, 28, 28)


class StoredSamples(Wrapper):
    """Hands back real training digits from generate (which the evaluator does not call)."""

    def generate(self, y, n=None):
        x, labels = data.load("mnist", "train")
        return torch.stack([x[labels == k][0] for k in y]).reshape(-1, 28, 28)


def test_evaluator_does_not_trust_reconstruct_generate_or_a_memorising_decoder(trained):
    vae, cvae = trained["vae"], trained["cvae"]
    honest = conditional.evaluate_reconstruction(vae)
    cheat = conditional.evaluate_reconstruction(Memoriser(vae))
    assert cheat.mse > 3 * honest.mse and cheat.points < 5, str(cheat)
    assert conditional.evaluate_generation(StoredSamples(cvae)) == conditional.evaluate_generation(cvae)


def test_evaluator_silences_warnings_and_restores_the_training_mode(trained):
    class Noisy(Wrapper):
        def decode(self, *args):
            warnings.warn("a warning in the student's decode")
            return super().decode(*args)

    noisy_vae, noisy_cvae = Noisy(trained["vae"]).train(), Noisy(trained["cvae"]).train()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        conditional.evaluate_reconstruction(noisy_vae)
        conditional.evaluate_generation(noisy_cvae)
    assert not seen and noisy_vae.training and noisy_cvae.training


def test_untrained_models_earn_next_to_nothing(solution):
    torch.manual_seed(0)
    r = conditional.evaluate_reconstruction(solution["VAE"](20))
    g = conditional.evaluate_generation(solution["CVAE"](4))
    assert r.points < 0.5 and g.points < 0.5, (str(r), str(g))


def test_evaluator_rejects_wrong_shapes(solution):
    class Flat(Wrapper):
        def decode(self, *args):
            return super().decode(*args)[:, :700]

    torch.manual_seed(0)
    with pytest.raises(ValueError, match="784"):
        conditional.evaluate_reconstruction(Flat(solution["VAE"](20)))
    with pytest.raises(ValueError, match="784"):
        conditional.evaluate_generation(Flat(solution["CVAE"](4)))


def test_grading_budget_is_short(trained, monkeypatch):
    assert trained["GRADED_EPOCHS"] <= 4
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert trained["VAE_RUN"].budget == trained["CVAE_RUN"].budget == 3, "both runs use the graded budget"
    assert (trained["VAE_RUN"].latent_dim, trained["VAE_RUN"].epochs) == (20, 10), "the lab guide's --latent_dim 20 --epochs 10"


def test_the_split_is_the_guides_5_1_1_of_the_training_images(trained):
    n = [len(trained[k]) for k in ("x_train", "x_val", "x_test")]
    assert sum(n) == 60_000 and n[1] == n[2] == 60_000 // 7 and abs(n[0] - 5 * n[1]) < 7, n
    x_all = torch.cat([trained["x_train"], trained["x_val"], trained["x_test"]])
    assert torch.equal(x_all, data.load("mnist", "train")[0].reshape(-1, 28, 28)), "disjoint, in order, all of them"


def test_the_gaussian_decoder_trains_on_the_students_kl_and_gaussian_nll(solution, monkeypatch):
    """Section 8: GaussianVAE is the student's VAE whose loss is their KL plus their gaussian_nll of
    the same sample's sigmoid means; graded, it trains one epoch and learns to reconstruct."""
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    ns = dict(solution)
    exec(compile(cell_source(AID, "train").split("\nruntime.seed")[0], "train", "exec"), ns)  # fitter, not its run
    assert "fitter" in ns and "vae" not in ns
    for gid in ("gaussian_nll", "gaussian_vae"):
        exec(compile(cell_source(AID, gid), gid, "exec"), ns)
    assert ns["GAUSSIAN_RUN"].budget == 1 and ns["GAUSSIAN_RUN"].latent_dim == ns["VAE_RUN"].latent_dim
    gvae, x = ns["gvae"], ns["x_val"][:64]
    assert isinstance(gvae, ns["VAE"]) and gvae.variance == ns["VARIANCE"]
    torch.manual_seed(3)
    nelbo, kl, rec = gvae.loss(x)
    torch.manual_seed(3)
    logits, _, _ = gvae(x)
    torch.manual_seed(3)
    want_kl = ns["VAE"].loss(gvae, x)[1]
    assert torch.allclose(rec, ns["gaussian_nll"](x.reshape(64, 784), torch.sigmoid(logits), ns["VARIANCE"]))
    assert torch.allclose(kl, want_kl) and torch.allclose(nelbo, kl + rec)
    untrained = ns["GaussianVAE"](ns["VAE_RUN"].latent_dim)
    with torch.no_grad():
        mse = lambda m: ((m.reconstruct(x) - x) ** 2).mean().item()
        assert mse(gvae) < 0.5 * mse(untrained), (mse(gvae), mse(untrained))

    class Inline(ns["VAE"]):  # a loss that never calls forward: the Gaussian decoder says so
        def loss(self, x):
            mu, logvar = self.encode(x)
            return mu.sum(), mu.sum(), mu.sum()
    ns["VAE"] = Inline
    exec(compile(cell_source(AID, "gaussian_vae").split("\n\nGAUSSIAN_RUN")[0], "gaussian_vae", "exec"), ns)
    with pytest.raises(RuntimeError, match="must call forward"):
        ns["GaussianVAE"](4).loss(x)


# --- through nbgrader: partial credit -------------------------------------------------------------

def _ignore_label() -> str:
    return edited(cell_source(AID, "cvae"), ("def _with_label(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:\n",
                            "def _with_label(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:\n        y = torch.zeros_like(y)\n"))


def test_a_cvae_that_ignores_the_label_loses_generation_points(grade_planted):
    score, cells = grade_planted(AID, "ignores_label", {"cvae": _ignore_label()})
    assert 0 < cells["test_generation"] < 11, "samples of the wrong digit: farther from their class (reference: about 14)"
    assert cells["test_label_conditioning"] == 0 and cells["test_cvae_interface"] == 0
    assert cells["test_reconstruction"] == 10, "the unconditional VAE is graded on its own"
    assert cells["test_vae"] == 4 and cells["test_cvae_loss"] == 3 and cells["test_vae_ignores_label"] == 2
    assert 0 < score.auto < score.auto_max


def test_models_that_do_not_train_lose_most_points(grade_planted):
    vae, loss = VAES[NO_GRADIENT][1], LOSSES[NO_GRADIENT][1]
    score, cells = grade_planted(AID, "untrained", {"vae": vae, "cvae_loss": loss})
    assert cells["test_vae"] == 0 and cells["test_cvae_loss"] == 0
    assert cells["test_reconstruction"] < 1 and cells["test_generation"] < 1, cells
    assert cells["test_cvae_interface"] == 4, "the CVAE itself is fine"
    assert cells["test_gaussian_nll"] == 3, "the Gaussian decoder's loss is graded on its own"
    assert score.auto <= 11


def test_a_large_code_loses_the_compression_bonus(grade_planted):
    """latent_dim = 392 for the VAE (bonus 0.7): good reconstructions, a fraction of the 10 points;
    latent_dim = 16 for the CVAE (bonus 1.18): a fraction of the 30, as always."""
    config = "VAE_RUN = RunConfig(latent_dim=392, epochs=10)\nCVAE_RUN = RunConfig(latent_dim=16, epochs=10)\n"
    score, cells = grade_planted(AID, "large_code", {"config": config})
    assert 5 < cells["test_reconstruction"] < 0.7 * 10 + 1e-9, cells
    assert cells["test_reconstruction"] != int(cells["test_reconstruction"]), "a fraction, from the cell's last value"
    assert 0 < cells["test_generation"] < 30 and cells["test_vae"] == 4 and cells["test_cvae_interface"] == 4, cells
