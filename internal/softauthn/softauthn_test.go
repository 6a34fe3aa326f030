package softauthn_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"

	"gatehouse/internal/softauthn"
)

const origin = "http://localhost:8080"

// user is a relying party's account: the library's webauthn.User.
type user struct {
	id    []byte
	name  string
	creds []webauthn.Credential
}

func (u *user) WebAuthnID() []byte                         { return u.id }
func (u *user) WebAuthnName() string                       { return u.name }
func (u *user) WebAuthnDisplayName() string                { return u.name }
func (u *user) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// rp is a relying party with its accounts, configured as gatehouse will be.
type rp struct {
	t     *testing.T
	w     *webauthn.WebAuthn
	users []*user
}

func newRP(t *testing.T) *rp {
	t.Helper()
	w, err := webauthn.New(&webauthn.Config{RPID: "localhost", RPDisplayName: "gatehouse", RPOrigins: []string{origin}})
	if err != nil {
		t.Fatal(err)
	}
	return &rp{t: t, w: w}
}

// beginRegistration starts a passkey registration for a new user and returns
// the options' JSON (the publicKey member) and the session.
func (r *rp) beginRegistration(u *user, opts ...webauthn.RegistrationOption) ([]byte, *webauthn.SessionData) {
	r.t.Helper()
	opts = append([]webauthn.RegistrationOption{
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementRequired,
			UserVerification: protocol.VerificationRequired,
		}),
	}, opts...)
	creation, session, err := r.w.BeginRegistration(u, opts...)
	if err != nil {
		r.t.Fatal(err)
	}
	options, err := json.Marshal(creation.Response)
	if err != nil {
		r.t.Fatal(err)
	}
	return options, session
}

// finishRegistration verifies the credential JSON as gatehouse's server
// will, and stores the credential with the user.
func (r *rp) finishRegistration(u *user, session *webauthn.SessionData, credentialJSON []byte) (*webauthn.Credential, error) {
	parsed, err := protocol.ParseCredentialCreationResponseBytes(credentialJSON)
	if err != nil {
		return nil, err
	}
	cred, err := r.w.CreateCredential(u, *session, parsed)
	if err != nil {
		return nil, err
	}
	u.creds = append(u.creds, *cred)
	return cred, nil
}

// register makes a user and registers a passkey of a for it.
func (r *rp) register(a *softauthn.Authenticator, name string) (*user, *webauthn.Credential) {
	r.t.Helper()
	u := &user{id: []byte("user-id-" + name), name: name}
	r.users = append(r.users, u)
	options, session := r.beginRegistration(u)
	credentialJSON, err := a.Create(options)
	if err != nil {
		r.t.Fatalf("Create: %v", err)
	}
	cred, err := r.finishRegistration(u, session, credentialJSON)
	if err != nil {
		r.t.Fatalf("registration refused: %v", describe(err))
	}
	return u, cred
}

// beginLogin starts a discoverable login requiring user verification.
func (r *rp) beginLogin() ([]byte, *webauthn.SessionData) {
	r.t.Helper()
	assertion, session, err := r.w.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		r.t.Fatal(err)
	}
	options, err := json.Marshal(assertion.Response)
	if err != nil {
		r.t.Fatal(err)
	}
	return options, session
}

// finishLogin verifies an assertion as gatehouse's server will: it finds the
// user by the user handle, and stores the updated credential.
func (r *rp) finishLogin(session *webauthn.SessionData, credentialJSON []byte) (*user, *webauthn.Credential, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(credentialJSON)
	if err != nil {
		return nil, nil, err
	}
	found, cred, err := r.w.ValidatePasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
		for _, u := range r.users {
			if bytes.Equal(u.id, userHandle) {
				return u, nil
			}
		}
		return nil, fmt.Errorf("no user with handle %x", userHandle)
	}, *session, parsed)
	if err != nil {
		return nil, nil, err
	}
	u := found.(*user)
	for i := range u.creds {
		if bytes.Equal(u.creds[i].ID, cred.ID) {
			u.creds[i] = *cred
		}
	}
	return u, cred, nil
}

// login signs in with a's passkey and fails the test if the RP refuses.
func (r *rp) login(a *softauthn.Authenticator) (*user, *webauthn.Credential) {
	r.t.Helper()
	options, session := r.beginLogin()
	credentialJSON, err := a.Get(options)
	if err != nil {
		r.t.Fatalf("Get: %v", err)
	}
	u, cred, err := r.finishLogin(session, credentialJSON)
	if err != nil {
		r.t.Fatalf("login refused: %v", describe(err))
	}
	return u, cred
}

// describe spells out a library error with its details and developer info.
func describe(err error) string {
	var perr *protocol.Error
	if errors.As(err, &perr) {
		return fmt.Sprintf("%v (details %q, info %q)", err, perr.Details, perr.DevInfo)
	}
	return err.Error()
}

func TestRegisterThenDiscoverableLogin(t *testing.T) {
	r := newRP(t)
	a := softauthn.New(origin)
	r.register(a, "bob") // another account's passkey on the same authenticator, older
	alice, reg := r.register(a, "alice")

	if reg.AttestationFormat != "none" || !reg.Flags.UserPresent || !reg.Flags.UserVerified ||
		!reg.Flags.BackupEligible || !reg.Flags.BackupState || reg.Authenticator.SignCount != 0 ||
		reg.Authenticator.Attachment != protocol.Platform || !slices.Equal(reg.Transport, []protocol.AuthenticatorTransport{protocol.Internal}) {
		t.Errorf("registered credential = %+v, want format none, flags UP UV BE BS, count 0, platform, internal", reg)
	}
	creds := a.Credentials()
	if got := creds[len(creds)-1]; !bytes.Equal(got.ID, reg.ID) || got.RPID != "localhost" || !bytes.Equal(got.UserHandle, alice.id) || got.UserName != "alice" {
		t.Errorf("resident credential = %+v, want ID %x for localhost, alice", got, reg.ID)
	}

	// With an empty allowCredentials the most recent passkey signs in, and
	// the server finds its user by the user handle.
	var last uint32
	for i := range 2 {
		u, cred := r.login(a)
		if u != alice || !bytes.Equal(cred.ID, reg.ID) {
			t.Fatalf("login %d: user %q, credential %x; want alice, %x", i, u.name, cred.ID, reg.ID)
		}
		if cred.Authenticator.SignCount <= last || cred.Authenticator.CloneWarning {
			t.Errorf("login %d: sign count %d (clone warning %v), want above %d", i, cred.Authenticator.SignCount, cred.Authenticator.CloneWarning, last)
		}
		last = cred.Authenticator.SignCount
	}
}

func TestLoginWithAllowCredentialsUsesTheListedOne(t *testing.T) {
	r := newRP(t)
	a := softauthn.New(origin)
	bob, _ := r.register(a, "bob")
	r.register(a, "alice")

	assertion, session, err := r.w.BeginLogin(bob)
	if err != nil {
		t.Fatal(err)
	}
	options, _ := json.Marshal(assertion.Response)
	credentialJSON, err := a.Get(options)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(credentialJSON)
	if err != nil {
		t.Fatal(describe(err))
	}
	cred, err := r.w.ValidateLogin(bob, *session, parsed)
	if err != nil {
		t.Fatalf("login refused: %v", describe(err))
	}
	if !bytes.Equal(cred.ID, bob.creds[0].ID) {
		t.Errorf("signed with %x, want bob's %x", cred.ID, bob.creds[0].ID)
	}

	// A list naming none of its credentials: nothing to sign with.
	other := softauthn.New(origin)
	if _, err := other.Get(options); !errors.Is(err, softauthn.ErrNotAllowed) {
		t.Errorf("Get with a foreign allowCredentials: %v, want ErrNotAllowed", err)
	}
}

func TestLoginRefusals(t *testing.T) {
	evilHash := sha256.Sum256([]byte("evil.example"))
	for _, tc := range []struct {
		name string
		// forge returns the credential JSON the attacker sends.
		forge func(a *softauthn.Authenticator, options []byte) ([]byte, error)
		want  string // in the library's error
	}{
		{"wrong origin", func(a *softauthn.Authenticator, options []byte) ([]byte, error) {
			return a.Get(options, softauthn.WithOrigin("http://evil.example:8080"))
		}, "Error validating origin"},
		{"wrong RP ID hash", func(a *softauthn.Authenticator, options []byte) ([]byte, error) {
			return a.Get(options, softauthn.WithRPIDHash(evilHash[:]))
		}, "RP Hash mismatch"},
		{"no user verification", func(a *softauthn.Authenticator, options []byte) ([]byte, error) {
			return a.Get(options, softauthn.WithoutUserVerification())
		}, "User verification required but flag not set"},
		{"replayed assertion", func(a *softauthn.Authenticator, options []byte) ([]byte, error) {
			return a.LastAssertion(), nil // signed for the previous session's challenge
		}, "Error validating challenge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRP(t)
			a := softauthn.New(origin)
			r.register(a, "alice")
			r.login(a) // leaves an assertion to replay

			options, session := r.beginLogin()
			forged, err := tc.forge(a, options)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := r.finishLogin(session, forged); err == nil || !strings.Contains(describe(err), tc.want) {
				t.Fatalf("forged login: %v, want a refusal with %q", err, tc.want)
			}
			// The same session accepts the honest assertion: the refusal was
			// the forgery's.
			honest, err := a.Get(options)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := r.finishLogin(session, honest); err != nil {
				t.Fatalf("honest login after the forgery: %v", describe(err))
			}
		})
	}
}

func TestRegistrationRefusals(t *testing.T) {
	evilHash := sha256.Sum256([]byte("evil.example"))
	for _, tc := range []struct {
		name string
		opt  softauthn.Option
		want string
	}{
		{"wrong origin", softauthn.WithOrigin("http://evil.example:8080"), "Error validating origin"},
		{"wrong RP ID hash", softauthn.WithRPIDHash(evilHash[:]), "RP Hash mismatch"},
		{"no user verification", softauthn.WithoutUserVerification(), "User verification required but flag not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRP(t)
			a := softauthn.New(origin)
			u := &user{id: []byte("user-id-alice"), name: "alice"}
			options, session := r.beginRegistration(u)
			forged, err := a.Create(options, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.finishRegistration(u, session, forged); err == nil || !strings.Contains(describe(err), tc.want) {
				t.Fatalf("forged registration: %v, want a refusal with %q", err, tc.want)
			}
			honest, err := a.Create(options)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.finishRegistration(u, session, honest); err != nil {
				t.Fatalf("honest registration after the forgery: %v", describe(err))
			}
		})
	}
}

// The library does not refuse a counter that goes backwards: it accepts the
// login and sets CloneWarning, which the server must act on.
func TestCloneSetsCloneWarning(t *testing.T) {
	t.Run("counter set back", func(t *testing.T) {
		r := newRP(t)
		a := softauthn.New(origin)
		_, reg := r.register(a, "alice")
		r.login(a)
		r.login(a) // the server has seen 2
		if err := a.SetSignCount(reg.ID, 0); err != nil {
			t.Fatal(err)
		}
		if _, cred := r.login(a); !cred.Authenticator.CloneWarning {
			t.Errorf("counter 1 after 2: %+v, want CloneWarning", cred.Authenticator)
		}
	})
	t.Run("exported and imported", func(t *testing.T) {
		r := newRP(t)
		a := softauthn.New(origin)
		r.register(a, "alice")
		clone := softauthn.New(origin)
		for _, c := range a.Credentials() {
			clone.Import(c)
		}
		if _, cred := r.login(a); cred.Authenticator.CloneWarning {
			t.Errorf("original's first login: %+v, want no CloneWarning", cred.Authenticator)
		}
		if _, cred := r.login(clone); !cred.Authenticator.CloneWarning {
			t.Errorf("clone's login at the same count: %+v, want CloneWarning", cred.Authenticator)
		}
	})
}

func TestExcludeCredentialsRefused(t *testing.T) {
	r := newRP(t)
	a := softauthn.New(origin)
	alice, _ := r.register(a, "alice")

	excluded := webauthn.WithExclusions(webauthn.Credentials(alice.creds).CredentialDescriptors())
	options, _ := r.beginRegistration(alice, excluded)
	if _, err := a.Create(options); !errors.Is(err, softauthn.ErrInvalidState) {
		t.Errorf("Create excluding its own credential: %v, want ErrInvalidState", err)
	}
	// Another authenticator does not hold it, and registers.
	other := softauthn.New(origin)
	credentialJSON, err := other.Create(options)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.ParseCredentialCreationResponseBytes(credentialJSON); err != nil {
		t.Fatal(describe(err))
	}
}

func TestBrowserChecks(t *testing.T) {
	challenge := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	create := func(rpID string, algs ...int) string {
		params, _ := json.Marshal(func() []map[string]any {
			var p []map[string]any
			for _, alg := range algs {
				p = append(p, map[string]any{"type": "public-key", "alg": alg})
			}
			return p
		}())
		return fmt.Sprintf(`{"rp":{"id":%q,"name":"x"},"user":{"id":"dQ","name":"u","displayName":"u"},"challenge":%q,"pubKeyCredParams":%s}`, rpID, challenge, params)
	}
	for _, tc := range []struct {
		name, options string
		get           bool
		want          error
	}{
		{"RP ID of another site", create("example.com", -7), false, softauthn.ErrSecurity},
		{"RP ID a subdomain of the origin's host", create("a.localhost", -7), false, softauthn.ErrSecurity},
		{"no ES256", create("localhost", -257), false, softauthn.ErrNotSupported},
		{"get with RP ID of another site", fmt.Sprintf(`{"challenge":%q,"rpId":"example.com"}`, challenge), true, softauthn.ErrSecurity},
		{"get with nothing registered", fmt.Sprintf(`{"challenge":%q,"rpId":"localhost"}`, challenge), true, softauthn.ErrNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := softauthn.New(origin)
			var err error
			if tc.get {
				_, err = a.Get([]byte(tc.options))
			} else {
				_, err = a.Create([]byte(tc.options))
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	// The RP ID may be a parent domain of the origin's host.
	if _, err := softauthn.New("https://login.example.com").Create([]byte(create("example.com", -7))); err != nil {
		t.Errorf("RP ID a parent domain of the origin's host: %v", err)
	}
}

// The JSON is PublicKeyCredential.toJSON()'s (WebAuthn Level 3,
// RegistrationResponseJSON and AuthenticationResponseJSON), member for
// member, whatever the library tolerates.
func TestJSONShapes(t *testing.T) {
	r := newRP(t)
	a := softauthn.New(origin)
	u := &user{id: []byte("user-id-alice"), name: "alice"}
	r.users = append(r.users, u)
	options, session := r.beginRegistration(u)
	registration, err := a.Create(options)
	if err != nil {
		t.Fatal(err)
	}
	var reg map[string]any
	if err := json.Unmarshal(registration, &reg); err != nil {
		t.Fatal(err)
	}
	checkMembers(t, "registration", reg, "authenticatorAttachment", "clientExtensionResults", "id", "rawId", "response", "type")
	resp := reg["response"].(map[string]any)
	checkMembers(t, "registration response", resp, "attestationObject", "authenticatorData", "clientDataJSON", "publicKey", "publicKeyAlgorithm", "transports")
	if reg["type"] != "public-key" || reg["authenticatorAttachment"] != "platform" || reg["id"] != reg["rawId"] ||
		resp["publicKeyAlgorithm"] != float64(webauthncose.AlgES256) || !reflect.DeepEqual(resp["transports"], []any{"internal"}) ||
		!reflect.DeepEqual(reg["clientExtensionResults"], map[string]any{}) {
		t.Errorf("registration = %s", registration)
	}
	var clientData map[string]any
	json.Unmarshal(b64(t, resp["clientDataJSON"]), &clientData)
	if !reflect.DeepEqual(clientData, map[string]any{"type": "webauthn.create", "challenge": session.Challenge, "origin": origin, "crossOrigin": false}) {
		t.Errorf("clientDataJSON = %v", clientData)
	}

	// publicKey is the SubjectPublicKeyInfo of the key the server stored.
	cred, err := r.finishRegistration(u, session, registration)
	if err != nil {
		t.Fatal(describe(err))
	}
	spki, err := x509.ParsePKIXPublicKey(b64(t, resp["publicKey"]))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := webauthncose.ParsePublicKey(cred.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ec2 := stored.(webauthncose.EC2PublicKeyData)
	want, err := ec2.ToECDSA()
	if err != nil || !want.Equal(spki) {
		t.Errorf("publicKey %v, COSE key %v (%v)", spki, want, err)
	}

	options, _ = r.beginLogin()
	assertion, err := a.Get(options)
	if err != nil {
		t.Fatal(err)
	}
	var as map[string]any
	if err := json.Unmarshal(assertion, &as); err != nil {
		t.Fatal(err)
	}
	checkMembers(t, "assertion", as, "authenticatorAttachment", "clientExtensionResults", "id", "rawId", "response", "type")
	checkMembers(t, "assertion response", as["response"].(map[string]any), "authenticatorData", "clientDataJSON", "signature", "userHandle")
	if got := b64(t, as["response"].(map[string]any)["userHandle"]); !bytes.Equal(got, u.id) {
		t.Errorf("userHandle %q, want %q", got, u.id)
	}
}

func checkMembers(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	var got []string
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("%s members %v, want %v", what, got, want)
	}
}

func b64(t *testing.T, v any) []byte {
	t.Helper()
	s, _ := v.(string)
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("%v is not unpadded base64url: %v", v, err)
	}
	return b
}

// A packed attestation carries its certificate chain and is verified by the
// library against the attestation certificate; a signature by any other key
// is refused.
func TestPackedAttestation(t *testing.T) {
	key, x5c, err := softauthn.AttestationChain(2, 100)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := softauthn.AttestationChain(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := newRP(t)
	a := softauthn.New(origin)
	u := &user{id: []byte("user-id-alice"), name: "alice"}
	options, session := r.beginRegistration(u)
	forged, err := a.Create(options, softauthn.WithPackedAttestation(other, x5c...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.finishRegistration(u, session, forged); err == nil || !strings.Contains(describe(err), "Signature validation error") {
		t.Fatalf("attestation signed by another key: %v, want a signature refusal", err)
	}
	honest, err := a.Create(options, softauthn.WithPackedAttestation(key, x5c...))
	if err != nil {
		t.Fatal(err)
	}
	cred, err := r.finishRegistration(u, session, honest)
	if err != nil {
		t.Fatalf("packed attestation refused: %v", describe(err))
	}
	if cred.AttestationType != "basic_full" || cred.AttestationFormat != "packed" {
		t.Fatalf("credential: attestation type %q, format %q; want basic_full, packed", cred.AttestationType, cred.AttestationFormat)
	}
}
