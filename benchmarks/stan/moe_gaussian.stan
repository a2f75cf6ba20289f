// bayesmoe's default fixed-K Gaussian mixture of experts (softmax gate), on the standardised
// scale: Xs = (X - mean) / sd and ys = (y - mean) / sd per column (numpy std, ddof 0), the same
// standardisation as bayesmoe.scaling.Standardizer. Priors: docs/math.md §2.1 (the "default" set).
//
//   beta0 ~ ZeroSumNormal(3) over experts, beta1[j] ~ ZeroSumNormal(3) over experts per feature j
//   a ~ N(0, 2), b ~ N(0, 2), sigma ~ HalfNormal(1)
//   p(ys_i | x_i) = sum_k softmax(Xs_i beta1 + beta0)_k N(ys_i | Xs_i a_k + b_k, sigma_k)
//
// ZeroSumNormal(s) as PyMC (and bayesmoe's flat density) has it: K values summing to zero with
// density prop. to exp(-sum(v^2) / (2 s^2)); Stan's sum_to_zero_vector has a constant-Jacobian
// (isometric) transform, so `v ~ normal(0, s)` is the same density up to a constant.
// bayesmoe's likelihood is in the user's units: it differs from this one by the constant
// -n log sd(y).
data {
  int<lower=1> N;
  int<lower=1> D;
  int<lower=2> K;
  matrix[N, D] X;  // standardised inputs (the gate's and the experts')
  vector[N] y;     // standardised response
}
parameters {
  sum_to_zero_vector[K] beta0;
  array[D] sum_to_zero_vector[K] beta1;
  matrix[D, K] a;
  vector[K] b;
  vector<lower=0>[K] sigma;
}
model {
  matrix[D, K] B1;
  for (j in 1:D) {
    B1[j] = beta1[j]';
  }
  matrix[N, K] eta = X * B1 + rep_matrix(beta0', N);
  matrix[N, K] mu = X * a + rep_matrix(b', N);
  matrix[N, K] lp;
  for (k in 1:K) {
    lp[:, k] = -0.5 * square((y - mu[:, k]) / sigma[k]) - log(sigma[k]);
  }
  beta0 ~ normal(0, 3);
  for (j in 1:D) {
    beta1[j] ~ normal(0, 3);
  }
  to_vector(a) ~ normal(0, 2);
  b ~ normal(0, 2);
  sigma ~ normal(0, 1);
  for (i in 1:N) {
    target += log_sum_exp(log_softmax(eta[i]') + lp[i]');
  }
}
