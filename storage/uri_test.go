package storage_test

import (
	"strings"
	"testing"

	"gatehouse/storage"
)

// Connection strings are checked by the driver's rules, offline: a
// mongodb+srv:// string too, with no DNS look-up (its host does not exist).
func TestCheckURI(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		want string // part of the error; "" = accepted
	}{
		{"mongodb://localhost:27017", ""},
		{"mongodb://alice:s3cret@db1.example:27017,db2.example:27017/?replicaSet=rs0&authSource=admin", ""},
		{"mongodb://%2Fsrv%2Fgatehouse%2Fdb.sock/", ""},
		{"mongodb+srv://alice:s3cret@cluster0.nowhere.invalid/?retryWrites=true&srvMaxHosts=2", ""},
		{"localhost:27017", "mongodb://"},
		{"http://localhost:27017", "mongodb://"},
		{"mongodb://", "host"},
		{"mongodb://localhost:99999", "port"},
		{"mongodb://localhost:27017/?w=banana&journal=maybe", "journal"},
		{"mongodb://localhost:27017?tls=true", "/"},
		{"mongodb+srv://cluster0.nowhere.invalid:27017/", "port"},
		{"mongodb+srv://a.nowhere.invalid,b.nowhere.invalid/", "one host"},
		{"mongodb+srv://cluster0.nowhere.invalid/?tls=perhaps", "tls"},
		{"mongodb+srv://cluster0.nowhere.invalid/?retryWrites=true;srvMaxHosts=2", ""},
	} {
		err := storage.CheckURI(tc.uri)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckURI(%q) = %v, want nil", tc.uri, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("CheckURI(%q) = %v, want an error about %q", tc.uri, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("CheckURI(%q) error shows the password: %v", tc.uri, err)
		}
	}
}

func TestRedactURI(t *testing.T) {
	for _, tc := range []struct{ uri, want string }{
		{"mongodb://localhost:27017/", "mongodb://localhost:27017/"},
		{"mongodb://alice@localhost/?authMechanism=MONGODB-X509", "mongodb://alice@localhost/?authMechanism=MONGODB-X509"},
		{"mongodb://alice:s3cret@db1:27017,db2:27017/gh?authSource=admin", "mongodb://alice:xxxxx@db1:27017,db2:27017/gh?authSource=admin"},
		{"mongodb+srv://alice:s3cret@cluster0.example.net/?retryWrites=true", "mongodb+srv://alice:xxxxx@cluster0.example.net/?retryWrites=true"},
		{"mongodb://db/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:tok&tlsCertificateKeyFilePassword=pw",
			"mongodb://db/xxxxx"}, // refused by the driver
		{"mongodb://h/?tls=true&tlsCertificateKeyFilePassword=pw&appName=gh", "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=xxxxx&appName=gh"},
		// The driver separates options with ; as well as &.
		{"mongodb://h:1/?tls=true;tlsCertificateKeyFilePassword=SECRET12", "mongodb://h:1/?tls=true;tlsCertificateKeyFilePassword=xxxxx"},
		{"mongodb://AKIA:pw@h/?x=1;authMechanism=MONGODB-AWS;authMechanismProperties=AWS_SESSION_TOKEN:TOKEN",
			"mongodb://AKIA:xxxxx@h/?x=1;authMechanism=MONGODB-AWS;authMechanismProperties=xxxxx"},
		// Any option whose name speaks of a secret, in any case or escaping.
		{"mongodb://h/?TLSCERTIFICATEKEYFILEPASSWORD=a;sslPEMKeyPassword=b&tlsCertificateKeyFile%50assword=c&appName=gh",
			"mongodb://h/?TLSCERTIFICATEKEYFILEPASSWORD=xxxxx;sslPEMKeyPassword=xxxxx&tlsCertificateKeyFile%50assword=xxxxx&appName=gh"},
		// The driver refuses these: only the scheme and hosts are shown.
		{"mongodb://u:p@SECRETTAIL@h/", "mongodb://xxxxx@h/xxxxx"},
		{"mongodb://u:p/SECRET@h:1/db", "mongodb://xxxxx@h:1/xxxxx"},
		{"mongodb://h:1/?tls=true;tlsCertificateKeyFilePassword=SECRET12;journal=maybe", "mongodb://h:1/xxxxx"},
		{"mongodb://alice:SECRET@db.example:99999/", "mongodb://xxxxx@db.example:99999/xxxxx"},
		{"mongodb://u:SECRET?x@h/?appName=a@b", "mongodb://u:xxxxx@h/?appName=a@b"},
		{"mongodb://u:SECRET?x@h:99999/?appName=a@b", "mongodb://xxxxx"},
		{"localhost:27017", "localhost:27017"},
		{"http://u:SECRET@h", "http://xxxxx@h"},
	} {
		if got := storage.RedactURI(tc.uri); got != tc.want {
			t.Errorf("RedactURI(%q) = %q, want %q", tc.uri, got, tc.want)
		}
	}
}

// What the driver refuses never shows a secret in CheckURI's error, nor in
// RedactURI's output, however the driver or a reader would split it.
func TestSecretsStayOutOfErrors(t *testing.T) {
	for _, uri := range []string{
		"mongodb://h:1/?tls=true;tlsCertificateKeyFilePassword=SECRET12;journal=maybe",
		"mongodb://h:1/?tlsCertificateKeyFilePassword=SECRET12%zz",
		"mongodb://AKIA:SECRET12@h/?x=1;authMechanism=MONGODB-AWS;authMechanismProperties=AWS_SESSION_TOKEN:SECRET12;journal=maybe",
		"mongodb://AKIA:SECRET12@h/?authMechanism=MONGODB-AWS;authMechanismProperties=AWS_SESSION_TOKEN%3ASECRET12,BAD",
		"mongodb://u:p@SECRET12@h/",
		"mongodb://u:SECRET12%zz@h/",
		"mongodb://u:SECRET12/x@h/",
		"mongodb://u:SECRET12:x@h/",
		"mongodb+srv://u:SECRET12@h.example/?tlsCertificateKeyFilePassword=SECRET12;tls=perhaps",
	} {
		err := storage.CheckURI(uri)
		if err == nil {
			t.Errorf("CheckURI(%q) = nil, want an error", uri)
			continue
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("CheckURI(%q) error shows the secret: %v", uri, err)
		}
		if r := storage.RedactURI(uri); strings.Contains(r, "SECRET") {
			t.Errorf("RedactURI(%q) = %q", uri, r)
		}
	}
}
