package decode

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestErrorsDoNotEchoServerStrings checks that a 200 body carrying a
// secret (a token echoed back, say) in a member name, a string value,
// trailing data or a long number never gets it into the error text: not
// whole, and not any 8-byte piece of it.
func TestErrorsDoNotEchoServerStrings(t *testing.T) {
	const digits = "3141592653589793238462643383279502884197"
	for _, secret := range []string{
		"qci-7f3c9a1e5b2d48c6a0f1e9d7b3c5",                                      // 32 bytes
		"qci-at-7f3c9a1e5b2d48c6a0f1e9d7b3c5a2e8f4d6b1c3a5e7f9d2b4c6e8a0f1b3d5", // longer than a member name may be
	} {
		testNoEcho(t, secret, digits)
	}
}

func testNoEcho(t *testing.T, secret, digits string) {
	cases := []struct{ name, body string }{
		{"member name", `{"` + secret + `":[1]}`},
		{"member name with spaces", ` { "` + secret + `" : [ 1 ] } `},
		{"member name with an escape", `{"\u0041` + secret + `":[1]}`},
		{"member name with a bad escape", `{"` + secret + `\q":[1]}`},
		{"member name cut short", `{"` + secret},
		{"second member", `{"data":[1],"` + secret + `":[2]}`},
		{"data is a string", `{"data":"` + secret + `"}`},
		{"string value", `["` + secret + `"]`},
		{"string after a value", `[1, "` + secret + `"]`},
		{"bare word value", `[1, ` + secret + `]`},
		{"missing comma", `[1 ` + secret + `]`},
		{"trailing string", `[1] "` + secret + `"`},
		{"trailing word", `[1]` + secret},
		{"trailing after wrapper", `{"data":[1]} ` + secret},
		{"body is text", secret},
		{"object without quotes", `{` + secret + `}`},
		{"long number out of range", `[` + digits[:19] + `]`},
		{"number over 64 bits", `[` + digits + `]`},
		{"fraction", `[1.` + digits + `]`},
	}
	for _, c := range cases {
		t.Run(c.name+"/"+strconv.Itoa(len(secret))+"B", func(t *testing.T) {
			_, err := decodeAll(c.body, 1, 16)
			require.Error(t, err)
			msg := err.Error()
			for _, s := range []string{secret, digits} {
				for i := 0; i+8 <= len(s); i++ {
					if !assert.NotContains(t, msg, s[i:i+8], "the error echoes the body") {
						break
					}
				}
			}
		})
	}
}
