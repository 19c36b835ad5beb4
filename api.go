package qrng

import "time"

// What this package assumes about the live uQRNG API. QCI documents the
// endpoints, the request bodies and the per-request and monthly limits; the
// rest below is inferred (see the package documentation and README, "What is
// unknown about the live API"). Each assumption is named here, once, and the
// ones a user may need to correct are settable on ClientConfig or Config.
const (
	// DefaultBaseURL is QCI's production host.
	DefaultBaseURL = "https://api.qci-prod.com"

	// MaxSamples is the most values one request may ask for (documented).
	MaxSamples = 1_000_000

	// DefaultQuotaBits is the free tier's monthly allowance (documented),
	// counted by this package as n_samples * n_bits per request (assumed).
	DefaultQuotaBits = 1_000_000_000

	// DefaultBits is the width requested when none is set. The live range of
	// n_bits is unknown; 16 is the width QCI's own examples use.
	DefaultBits = 16

	// defaultTokenLifetime is assumed when the token answer states no expiry.
	defaultTokenLifetime = 5 * time.Minute

	pathAccessToken   = "/auth/v1/access-tokens"
	pathRandomNumbers = "/qrng/random_numbers"
	pathUsage         = "/qrng/usage"

	envToken   = "QCI_TOKEN"
	envBaseURL = "QCI_API_URL"
)

// Version is this library's version, sent in the User-Agent header.
const Version = "0.1.0"

// isQuotaStatus reports whether an answer with this status may signal an
// exhausted monthly quota when its message mentions "quota". The live
// status is unknown: 429 is assumed, 402 and 403 are tolerated.
func isQuotaStatus(status int) bool {
	return status == 429 || status == 402 || status == 403
}
