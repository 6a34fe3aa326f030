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
			"mongodb://db/?authMechanism=MONGODB-AWS&authMechanismProperties=xxxxx&tlsCertificateKeyFilePassword=xxxxx"},
	} {
		if got := storage.RedactURI(tc.uri); got != tc.want {
			t.Errorf("RedactURI(%q) = %q, want %q", tc.uri, got, tc.want)
		}
	}
}
