"""naive_conv.py with one classic bug, to show what a convention bug looks like in the harness's output.

Everything is as in naive_conv.py except SAME padding: this version pads ``k_eff // 2`` on every side (what
PyTorch's ``padding=k // 2`` does), instead of TensorFlow's ``total // 2`` before and the odd pixel after.
For an odd kernel at stride 1 the two agree. They differ when TensorFlow's total padding is odd or smaller than
``2 * (k_eff // 2)``: at stride 2 on an even-sized input the output has the right shape but is shifted by one
pixel (ResNet's stride-2 3x3 convolutions), and with an even kernel the output has one pixel too many.
"""

from pathlib import Path

# Everything as in naive_conv.py (its source, run in this module so that its functions see the replacement below)
_CORRECT = Path(__file__).with_name("naive_conv.py")
exec(compile(_CORRECT.read_text(encoding="utf-8"), str(_CORRECT), "exec"))


def _same_pads(size: int, k_eff: int, stride: int) -> tuple[int, int]:
    half = k_eff // 2  # BUG: symmetric "same" padding, k // 2 on each side (TensorFlow: total // 2 before, rest after)
    return half, half
