package rdstls

import "testing"

// FuzzParse: any input either parses to at least one certificate or is
// refused; it never panics.
func FuzzParse(f *testing.F) {
	f.Add(Embedded()[:2000])
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := Parse(data)
		if err == nil && len(certs) == 0 {
			t.Fatal("Parse returned no certificate and no error")
		}
	})
}
