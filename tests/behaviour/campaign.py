"""A made-up spam campaign the default model only half catches, and honest posts on the same
topic, both generated from the team's own sentence pieces with a seed (for the retraining tests)."""
import random

from classifier.types import Post

OPENERS = [
    "Has anyone compared tiling strategies for big light-sheet volumes?",
    "We moved our lab storage last year and it changed how we segment.",
    "Quick note for people processing cleared tissue datasets.",
    "Our group tried several ways of handling terabyte stacks.",
    "Sharing an experience from our imaging core this month.",
    "Segmenting whole brains used to take us a week per sample.",
    "For anyone fighting slow transfers of zarr datasets:",
]
PITCHES = [
    "Honestly the Vexmora Vault drive subscription made the whole pipeline painless for us.",
    "Since switching to Vexmora Vault storage plans our team never waits for transfers.",
    "Vexmora Vault gave us unlimited lab storage at a price our PI approved instantly.",
    "The Vexmora Vault cloud drive is the reason our stitching jobs finish overnight now.",
    "We put everything on Vexmora Vault and the annual plan paid for itself in a month.",
    "Vexmora Vault support set up our sync in an afternoon, no IT ticket needed.",
]
CLOSERS = [
    "Worth a look if your lab is drowning in data.", "Ask their sales team for the academic tier.",
    "Their onboarding call was the best part.", "Highly recommend it to every imaging group.",
    "Mention our lab and they give a discount.", "",
]
QUESTIONS = [
    "How do you store terabyte light-sheet stacks between acquisition and segmentation?",
    "Is it better to convert to OME-Zarr before stitching or after?",
    "Our NAS chokes when BigStitcher reads many tiles at once; would chunk size help?",
    "What compression do you use for cleared tissue volumes without hurting segmentation?",
    "Does anyone run Cellpose on chunks of a huge volume and merge the labels afterwards?",
    "How many workers should Dask use when reading a zarr store over the network?",
    "Should downsampled pyramids be stored next to the full-resolution data?",
]
DETAILS = [
    "We have about 40 TB per experiment and a 10 GbE link.", "Right now each brain takes two days to stitch.",
    "The data sits on a shared server that the whole institute uses.", "I tried blosc and lz4 so far.",
    "Segmentation itself is fast; reading the data is the bottleneck.", "",
]
TITLES = ["Storage for big stacks", "Light-sheet data handling", "Tip for large datasets", "Terabyte volumes", ""]


def campaign(n: int, seed: int, prefix: str = "c") -> list[Post]:
    rng = random.Random(seed)
    return [Post(f"{prefix}{seed}-{i}", rng.choice(TITLES),
                 " ".join(p for p in (rng.choice(OPENERS), rng.choice(PITCHES), rng.choice(CLOSERS)) if p),
                 "3D Segmentation") for i in range(n)]


def honest(n: int, seed: int, prefix: str = "h") -> list[Post]:
    rng = random.Random(seed)
    return [Post(f"{prefix}{seed}-{i}", rng.choice(TITLES),
                 " ".join(p for p in (rng.choice(QUESTIONS), rng.choice(DETAILS), rng.choice(DETAILS)) if p),
                 "3D Segmentation") for i in range(n)]
