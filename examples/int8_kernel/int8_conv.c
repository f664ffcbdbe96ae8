/* An int8 convolution written the way a microcontroller kernel is: loops, int32 accumulators, and TFLite's
 * requantization (gemmlowp's double rounding), from TFLite's quantization spec. It knows nothing of the harness;
 * run.py calls it on the harness's exported cases (harness export --npz) through ctypes.
 *
 * Layouts are TFLite's: input NHWC, filter OHWI [out_c][k_h][k_w][filter_in_c] (grouped when in_c is a multiple of
 * filter_in_c), bias int32 [out_c], output NHWC. Per output channel c: multiplier[c] (Q31) and shift[c], as TFLite's
 * QuantizeMultiplier gives them.
 *
 * Build: cc -O2 -shared -fPIC int8_conv.c -o libint8conv.so
 * The buggy twins, each one line away: -DROUNDING_BUG=1 (a plain arithmetic shift, which floors) or
 * -DROUNDING_BUG=2 (ties rounded up, not away from zero).
 */
#include <stdint.h>

#ifndef ROUNDING_BUG
#define ROUNDING_BUG 0
#endif

/* gemmlowp's SaturatingRoundingDoublingHighMul: the high 32 bits of 2*a*b, rounded half away from zero. */
static int32_t srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
    return (int32_t)((ab + nudge) / (1LL << 31)); /* C division truncates toward zero */
}

/* gemmlowp's RoundingDivideByPOT: x / 2**exponent, rounded to nearest, ties away from zero. */
static int32_t rounding_divide_by_pot(int32_t x, int exponent) {
#if ROUNDING_BUG == 1
    return x >> exponent; /* the bug: floors */
#else
    int32_t mask = (int32_t)((1LL << exponent) - 1);
    int32_t remainder = x & mask;
#if ROUNDING_BUG == 2
    int32_t threshold = mask >> 1; /* the bug: a negative tie rounds up, toward zero */
#else
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
#endif
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
#endif
}

static int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift) {
    int left = shift > 0 ? shift : 0;
    int right = shift > 0 ? 0 : -shift;
    return rounding_divide_by_pot(srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

/* TFLite's SAME padding: the total is split with the odd pixel at the end. VALID pads nothing. */
static int padding_before(int same, int in, int out, int stride, int dilation, int k) {
    if (!same) return 0;
    int effective = (k - 1) * dilation + 1;
    int total = (out - 1) * stride + effective - in;
    return total > 0 ? total / 2 : 0;
}

int int8_conv2d(const int8_t *input, int batches, int in_h, int in_w, int in_c,
                const int8_t *filter, int out_c, int k_h, int k_w, int filter_in_c,
                const int32_t *bias, int stride_h, int stride_w, int dilation_h, int dilation_w, int same,
                int32_t input_zero_point, int32_t output_zero_point,
                const int32_t *multiplier, const int32_t *shift, int32_t act_min, int32_t act_max,
                int8_t *output, int out_h, int out_w) {
    if (filter_in_c < 0 || (filter_in_c == 0 ? in_c != 0 : in_c % filter_in_c != 0)) return 1;
    int groups = filter_in_c > 0 ? in_c / filter_in_c : 1; /* no input channels: every output is its bias */
    if (out_c % groups != 0) return 2;
    int per_group = out_c / groups;
    int pad_top = padding_before(same, in_h, out_h, stride_h, dilation_h, k_h);
    int pad_left = padding_before(same, in_w, out_w, stride_w, dilation_w, k_w);
    for (int b = 0; b < batches; ++b)
        for (int oy = 0; oy < out_h; ++oy)
            for (int ox = 0; ox < out_w; ++ox)
                for (int oc = 0; oc < out_c; ++oc) {
                    int group = oc / per_group;
                    int32_t acc = 0;
                    for (int ky = 0; ky < k_h; ++ky) {
                        int iy = oy * stride_h - pad_top + ky * dilation_h;
                        if (iy < 0 || iy >= in_h) continue;
                        for (int kx = 0; kx < k_w; ++kx) {
                            int ix = ox * stride_w - pad_left + kx * dilation_w;
                            if (ix < 0 || ix >= in_w) continue;
                            for (int ic = 0; ic < filter_in_c; ++ic) {
                                int32_t x = input[((b * in_h + iy) * in_w + ix) * in_c + group * filter_in_c + ic];
                                int32_t w = filter[((oc * k_h + ky) * k_w + kx) * filter_in_c + ic];
                                acc += (x - input_zero_point) * w;
                            }
                        }
                    }
                    acc += bias[oc];
                    int32_t y = multiply_by_quantized_multiplier(acc, multiplier[oc], shift[oc]) + output_zero_point;
                    y = y < act_min ? act_min : y > act_max ? act_max : y;
                    output[((b * out_h + oy) * out_w + ox) * out_c + oc] = (int8_t)y;
                }
    return 0;
}
