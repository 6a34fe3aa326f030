import { useState, type FormEvent } from 'react';
import { useApolloClient, useMutation, useReactiveVar } from '@apollo/client/react';
import { sessionEnded } from './apollo';
import { lostCookieCauses, type LostCookieCause } from './cookies';
import { errorCode, errorMessage } from './errors';
import {
  BeginPasskeyLoginMutation, FinishPasskeyLoginMutation, LogInMutation, MeQuery, SignUpMutation,
} from './operations';
import { getPasskey, PasskeyError, passkeysSupported } from './passkeys';

/**
 * LoginForm signs a visitor in, or up, with a username and password, on the
 * gatehouse at graphqlURL. When the server accepts the password but the
 * browser does not keep the session cookie, it says why. For an account
 * with two-factor on, the password opens a session that waits for a code,
 * and App shows SecondFactorForm next. "Sign in with a passkey" needs no
 * username: the browser offers the passkeys it holds for this site.
 */
export function LoginForm({ graphqlURL }: { graphqlURL: string }) {
  const client = useApolloClient();
  const ended = useReactiveVar(sessionEnded);
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [failure, setFailure] = useState<string | null>(null);
  const [lostCookie, setLostCookie] = useState<LostCookieCause[] | null>(null);
  const [logIn, logInState] = useMutation(LogInMutation);
  const [signUp, signUpState] = useMutation(SignUpMutation);
  const [beginPasskey] = useMutation(BeginPasskeyLoginMutation);
  const [finishPasskey] = useMutation(FinishPasskeyLoginMutation);
  const [passkeyBusy, setPasskeyBusy] = useState(false);
  const busy = logInState.loading || signUpState.loading || passkeyBusy;

  function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const action = (e.nativeEvent as SubmitEvent).submitter?.getAttribute('value');
    const variables = { username, password };
    return signIn(async () => action === 'signup'
      ? (await signUp({ variables }), false)
      : (await logIn({ variables })).data?.login.secondFactorRequired ?? false);
  }

  // withPasskey signs in with no username: begin, the browser's prompt
  // (src/passkeys.ts), finish. A passkey is both factors: no second step.
  async function withPasskey() {
    setPasskeyBusy(true);
    try {
      await signIn(async () => {
        const begun = (await beginPasskey()).data?.beginPasskeyLogin;
        if (!begun) throw new Error('beginPasskeyLogin answered nothing');
        const credential = await getPasskey(begun.options);
        try {
          await finishPasskey({ variables: { challengeId: begun.challengeId, credential } });
        } catch (err) {
          if (errorCode(err) !== 'UNAUTHENTICATED') throw err;
          // The server does not say why, on purpose: most often the
          // passkey was deleted from the account, yet the device kept it.
          throw new PasskeyError(`${errorMessage(err)} This passkey may have been deleted from your account: ` +
            'sign in with your password.');
        }
        return false;
      });
    } finally {
      setPasskeyBusy(false);
    }
  }

  // signIn runs one way of signing in, which resolves to whether the new
  // session waits for its second factor, then checks the cookie held.
  async function signIn(how: () => Promise<boolean>) {
    setFailure(null);
    setLostCookie(null);
    try {
      const pending = await how();
      sessionEnded(null);
      // The answer set the session cookie, unless the browser refused it
      // (see cookies.ts). Ask who we are, outside the cache, before
      // anything on screen changes: signed out still means the cookie was
      // dropped, which would otherwise just show this form again. A
      // session that waits for the second factor has no me yet, but says
      // it waits.
      const { data } = await client.query({ query: MeQuery, fetchPolicy: 'no-cache' });
      if (pending ? !data?.session?.secondFactorPending : !data?.me) {
        setLostCookie(lostCookieCauses(window.location.origin, graphqlURL));
        return;
      }
    } catch (err) {
      setFailure(errorMessage(err));
      return;
    }
    // Drop everything cached for the signed-out visitor and ask again who
    // we are: the account page, or the second step (SecondFactorForm).
    await client.resetStore();
  }

  return (
    <form onSubmit={(e) => void submit(e)} className="card" aria-label="Sign in">
      <h2>Log in or sign up</h2>
      {ended && <p role="status" className="warning">{ended}</p>}
      <label>
        Username
        <input name="username" autoComplete="username" required value={username}
          onChange={(e) => setUsername(e.target.value)} />
      </label>
      <label>
        Password
        <input name="password" type="password" autoComplete="current-password" required value={password}
          onChange={(e) => setPassword(e.target.value)} />
      </label>
      {failure && <p role="alert" className="error">{failure}</p>}
      {lostCookie && (
        <div role="alert" className="error" aria-label="Session cookie refused">
          <p><strong>Signed in, but this browser did not keep the session cookie</strong>, so you are
            still signed out. Check:</p>
          <ul>
            {lostCookie.map((cause) => (
              <li key={cause.text}>{cause.likely && <strong>Likely: </strong>}{cause.text}</li>
            ))}
          </ul>
        </div>
      )}
      <div className="actions">
        <button type="submit" value="login" disabled={busy}>Log in</button>
        <button type="submit" value="signup" disabled={busy} className="secondary">Sign up</button>
      </div>
      {passkeysSupported() && (
        <div className="actions passkey-login">
          <button type="button" className="secondary" disabled={busy} onClick={() => void withPasskey()}>
            Sign in with a passkey</button>
        </div>
      )}
    </form>
  );
}
