package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TLSServer is a redis-server that speaks only TLS, with a CA, a server
// certificate for 127.0.0.1 and localhost, and a client certificate, all
// made for the test (crypto/x509; no openssl needed).
type TLSServer struct {
	*Server
	CAFile                string // the CA's certificate, PEM
	ClientCert, ClientKey string // a client certificate the server accepts, and its key, PEM
	OtherCAFile           string // a CA that signed nothing here
	ClientTLS             *tls.Config
}

// StartTLS starts a redis-server on a TLS port only. With clientCerts the
// server requires a client certificate signed by its CA
// (tls-auth-clients yes); without, it asks for none.
func StartTLS(t testing.TB, clientCerts bool) *TLSServer {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := newCA(t, "qrng test CA")
	other, _ := newCA(t, "another CA")
	ts := &TLSServer{CAFile: filepath.Join(dir, "ca.pem"), OtherCAFile: filepath.Join(dir, "other-ca.pem"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client.key")}
	writePEM(t, ts.CAFile, "CERTIFICATE", ca.Raw)
	writePEM(t, ts.OtherCAFile, "CERTIFICATE", other.Raw)
	srvCert, srvKey := newLeaf(t, ca, caKey, "127.0.0.1", x509.ExtKeyUsageServerAuth)
	srvCertFile, srvKeyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	writePEM(t, srvCertFile, "CERTIFICATE", srvCert)
	writePEM(t, srvKeyFile, "PRIVATE KEY", srvKey)
	cliCert, cliKey := newLeaf(t, ca, caKey, "qrng-client", x509.ExtKeyUsageClientAuth)
	writePEM(t, ts.ClientCert, "CERTIFICATE", cliCert)
	writePEM(t, ts.ClientKey, "PRIVATE KEY", cliKey)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	pair, err := tls.LoadX509KeyPair(ts.ClientCert, ts.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	ts.ClientTLS = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	auth := "no"
	if clientCerts {
		auth = "yes"
	}
	ts.Server = startServer(t, "tls", ts.ClientTLS, func(port int) []string {
		return []string{"--port", "0", "--tls-port", strconv.Itoa(port), "--tls-cert-file", srvCertFile,
			"--tls-key-file", srvKeyFile, "--tls-ca-cert-file", ts.CAFile, "--tls-auth-clients", auth}
	}, nil)
	return ts
}

func newCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial(t), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// newLeaf makes a certificate for name signed by ca, and its key (PKCS #8).
func newLeaf(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, usage x509.ExtKeyUsage) (cert, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial(t), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	cert, err = x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err = x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
