//! The stratified ratio estimator and its standard error.
//!
//! A share is a ratio of two totals over the country's stations, R = Y/X:
//! a party's votes over the valid ballots, or the ballots cast over the
//! registered voters. From a stratified simple random sample of stations,
//! with N_h stations in stratum h of which n_h reported,
//!
//! ```text
//! Ŷ = Σ_h (N_h/n_h) Σ_i y_hi      X̂ = Σ_h (N_h/n_h) Σ_i x_hi      R̂ = Ŷ/X̂
//! ```
//!
//! and by Taylor linearisation (Cochran 1977, §6.11; Lohr 2010, §4.1, 9.1)
//!
//! ```text
//! V̂(R̂) = Σ_h N_h² (1 - n_h/N_h) s_h² / n_h,   s_h² = the sample variance in h of
//!         e_hi = (y_hi - R̂ x_hi) / X̂
//! ```
//!
//! with the finite population correction per stratum. An estimate for a
//! region (a domain) is the same with y and x set to zero at stations
//! outside it, so a region that cuts across strata is still estimated
//! correctly. The stations that reported stand for their stratum as if
//! they were its sample: `docs/pvt.md` says what that assumes.

use serde::Serialize;

use super::design::{Z95, Z99};

/// One reporting station's pair of figures, in its stratum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observation {
    /// Index of its stratum in the population list.
    pub stratum: usize,
    /// The numerator's figure (a party's votes, the ballots cast).
    pub y: f64,
    /// The denominator's figure (the valid ballots, the registered voters).
    pub x: f64,
}

/// An estimated ratio with its uncertainty.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Ratio {
    /// R̂, a proportion (0.4 for 40%).
    pub estimate: f64,
    /// Its standard error.
    pub se: f64,
    /// Half the 95% interval: 1.96 standard errors.
    pub margin95: f64,
    /// Half the 99% interval: 2.58 standard errors.
    pub margin99: f64,
}

impl Ratio {
    /// Whether `value` lies within the 99% interval.
    pub fn within99(&self, value: f64) -> bool {
        (value - self.estimate).abs() <= self.margin99
    }
}

/// Sums of one stratum: first the totals, then the centred squares and
/// cross-products (two passes, so the variance of residuals is taken
/// without the cancellation of raw sums of squares, and without a
/// division per station).
#[derive(Clone, Copy, Debug, Default)]
struct Sums {
    n: u64,
    sum_y: f64,
    sum_x: f64,
    /// Σ (y - ȳ)², Σ (x - x̄)², Σ (x - x̄)(y - ȳ).
    syy: f64,
    sxx: f64,
    sxy: f64,
}

/// The estimate of Σy/Σx over the population from `observations`, for
/// strata of `population[h]` stations each; `None` when the estimated
/// denominator is zero (nothing reported, or nothing to divide by).
///
/// A stratum with a single report adds its total but no variance (there
/// is none to estimate from one station); the caller names such strata.
pub fn ratio(population: &[u64], observations: &[Observation]) -> Option<Ratio> {
    let mut sums = vec![Sums::default(); population.len()];
    for o in observations {
        let s = &mut sums[o.stratum];
        s.n += 1;
        s.sum_y += o.y;
        s.sum_x += o.x;
    }
    let means: Vec<(f64, f64)> = sums
        .iter()
        .map(|s| {
            if s.n == 0 {
                (0.0, 0.0)
            } else {
                (s.sum_y / s.n as f64, s.sum_x / s.n as f64)
            }
        })
        .collect();
    for o in observations {
        let (my, mx) = means[o.stratum];
        let (dy, dx) = (o.y - my, o.x - mx);
        let s = &mut sums[o.stratum];
        s.syy += dy * dy;
        s.sxx += dx * dx;
        s.sxy += dx * dy;
    }
    let (mut y_hat, mut x_hat) = (0.0, 0.0);
    for ((s, &(my, mx)), &big_n) in sums.iter().zip(&means).zip(population) {
        if s.n > 0 {
            // N_h/n_h × Σ_i = N_h × mean.
            y_hat += big_n as f64 * my;
            x_hat += big_n as f64 * mx;
        }
    }
    // Also refuses a NaN denominator.
    if x_hat.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    let r = y_hat / x_hat;
    let mut variance = 0.0;
    for (s, &big_n) in sums.iter().zip(population) {
        if s.n < 2 {
            continue;
        }
        let n = s.n as f64;
        let big_n = big_n as f64;
        // Σ (e - ē)² = [Syy - 2R Sxy + R² Sxx] / X̂².
        let ss = (s.syy - 2.0 * r * s.sxy + r * r * s.sxx).max(0.0) / (x_hat * x_hat);
        let s2 = ss / (n - 1.0);
        let fpc = (1.0 - n / big_n).max(0.0);
        variance += big_n * big_n * fpc * s2 / n;
    }
    let se = variance.sqrt();
    Some(Ratio {
        estimate: r,
        se,
        margin95: Z95 * se,
        margin99: Z99 * se,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(stratum: usize, y: f64, x: f64) -> Observation {
        Observation { stratum, y, x }
    }

    /// A dataset small enough to compute by hand. Two strata of N = 10
    /// and 20 stations; reports (y, x): stratum 0: (30, 100), (50, 120),
    /// (40, 90); stratum 1: (10, 80), (25, 100).
    ///
    /// Ŷ = 10·40 + 20·17.5 = 750; X̂ = 10·(310/3) + 20·90 = 2833.333…;
    /// R̂ = 750/2833.333… = 0.264705882352941…
    /// Residuals y - R̂x: stratum 0: 3.5294117647, 18.2352941176,
    /// 16.1764705882; stratum 1: -11.1764705882, -1.4705882353.
    /// V·X̂² = 10²·0.7·s²₀/3 + 20²·0.9·s²₁/2 = 9957.9008…, with s²_h the
    /// sample variances of those residuals; SE = √9957.9008… / X̂ =
    /// 0.0352197… (computed independently in Python with `fractions`).
    #[test]
    fn a_hand_computed_dataset_gives_the_known_estimate_and_error() {
        let population = [10, 20];
        let data = [
            obs(0, 30.0, 100.0),
            obs(0, 50.0, 120.0),
            obs(0, 40.0, 90.0),
            obs(1, 10.0, 80.0),
            obs(1, 25.0, 100.0),
        ];
        let r = ratio(&population, &data).unwrap();
        assert!(
            (r.estimate - 0.264_705_882_352_941_2).abs() < 1e-12,
            "{}",
            r.estimate
        );
        assert!((r.se - SE_KNOWN).abs() < 1e-9, "{}", r.se);
        assert!((r.margin95 - Z95 * SE_KNOWN).abs() < 1e-9);
        assert!((r.margin99 - Z99 * SE_KNOWN).abs() < 1e-9);
        // A domain (stratum 0's first two stations, say a region) is the
        // same sums with the rest set to zero.
        let domain = [
            obs(0, 30.0, 100.0),
            obs(0, 50.0, 120.0),
            obs(0, 0.0, 0.0),
            obs(1, 0.0, 0.0),
            obs(1, 0.0, 0.0),
        ];
        let d = ratio(&population, &domain).unwrap();
        assert!((d.estimate - 80.0 / 220.0).abs() < 1e-12);
        assert!((d.se - SE_DOMAIN_KNOWN).abs() < 1e-9, "{}", d.se);
    }

    /// From Python's `fractions` over the formulas in the module's doc.
    const SE_KNOWN: f64 = 0.035_219_746_597_619_04;
    const SE_DOMAIN_KNOWN: f64 = 0.041_917_205_464_184_33;

    #[test]
    fn a_census_has_no_sampling_error_and_nothing_has_no_estimate() {
        let r = ratio(&[2], &[obs(0, 1.0, 4.0), obs(0, 3.0, 4.0)]).unwrap();
        assert_eq!(r.estimate, 0.5);
        assert_eq!(r.se, 0.0, "every station reported: the fpc is zero");
        assert_eq!(ratio(&[5, 5], &[]), None);
        assert_eq!(ratio(&[5], &[obs(0, 0.0, 0.0)]), None);
        // One report in a stratum: its total counts, no variance.
        let one = ratio(
            &[5, 5],
            &[obs(0, 1.0, 2.0), obs(1, 2.0, 2.0), obs(1, 0.0, 2.0)],
        )
        .unwrap();
        assert!((one.estimate - 0.5).abs() < 1e-12);
        assert!(one.se > 0.0);
    }
}
