/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  query Me {\n    me {\n      id\n      username\n      createdAt\n      totpEnabled\n      recoveryCodesLeft\n    }\n    session {\n      id\n      secondFactorPending\n    }\n  }\n": typeof types.MeDocument,
    "\n  query Sessions {\n    session {\n      id\n      data\n    }\n    sessions {\n      id\n      current\n      factors\n      createdAt\n      lastSeenAt\n      expiresAt\n      userAgent\n      ipAddress\n    }\n  }\n": typeof types.SessionsDocument,
    "\n  mutation SignUp($username: String!, $password: String!) {\n    register(username: $username, password: $password) {\n      session {\n        id\n      }\n    }\n  }\n": typeof types.SignUpDocument,
    "\n  mutation LogIn($username: String!, $password: String!) {\n    login(username: $username, password: $password) {\n      session {\n        id\n      }\n      secondFactorRequired\n    }\n  }\n": typeof types.LogInDocument,
    "\n  mutation VerifySecondFactor($code: String!) {\n    verifySecondFactor(code: $code) {\n      session {\n        id\n      }\n    }\n  }\n": typeof types.VerifySecondFactorDocument,
    "\n  mutation RevokeSession($id: ID!) {\n    deleteSession(id: $id)\n  }\n": typeof types.RevokeSessionDocument,
    "\n  mutation LogOutOthers {\n    deleteOtherSessions\n  }\n": typeof types.LogOutOthersDocument,
    "\n  mutation SaveSessionData($data: JSONObject!) {\n    updateSessionData(data: $data) {\n      id\n      data\n    }\n  }\n": typeof types.SaveSessionDataDocument,
    "\n  mutation LogOut {\n    deleteSession\n  }\n": typeof types.LogOutDocument,
    "\n  mutation BeginTotpEnrollment($password: String!) {\n    beginTotpEnrollment(password: $password) {\n      secret\n      uri\n      qrCodeSvg\n    }\n  }\n": typeof types.BeginTotpEnrollmentDocument,
    "\n  mutation ConfirmTotpEnrollment($code: String!) {\n    confirmTotpEnrollment(code: $code)\n  }\n": typeof types.ConfirmTotpEnrollmentDocument,
    "\n  mutation DisableTotp($password: String!, $code: String!) {\n    disableTotp(password: $password, code: $code)\n  }\n": typeof types.DisableTotpDocument,
    "\n  mutation RegenerateRecoveryCodes($password: String!, $code: String!) {\n    regenerateRecoveryCodes(password: $password, code: $code)\n  }\n": typeof types.RegenerateRecoveryCodesDocument,
    "\n  query Passkeys {\n    passkeys {\n      id\n      name\n      createdAt\n      lastUsedAt\n    }\n  }\n": typeof types.PasskeysDocument,
    "\n  mutation BeginPasskeyRegistration {\n    beginPasskeyRegistration {\n      challengeId\n      options\n    }\n  }\n": typeof types.BeginPasskeyRegistrationDocument,
    "\n  mutation FinishPasskeyRegistration($challengeId: ID!, $credential: JSONObject!, $name: String) {\n    finishPasskeyRegistration(challengeId: $challengeId, credential: $credential, name: $name) {\n      id\n      name\n    }\n  }\n": typeof types.FinishPasskeyRegistrationDocument,
    "\n  mutation RenamePasskey($id: ID!, $name: String!) {\n    renamePasskey(id: $id, name: $name) {\n      id\n      name\n    }\n  }\n": typeof types.RenamePasskeyDocument,
    "\n  mutation DeletePasskey($id: ID!) {\n    deletePasskey(id: $id)\n  }\n": typeof types.DeletePasskeyDocument,
    "\n  mutation BeginPasskeyLogin {\n    beginPasskeyLogin {\n      challengeId\n      options\n    }\n  }\n": typeof types.BeginPasskeyLoginDocument,
    "\n  mutation FinishPasskeyLogin($challengeId: ID!, $credential: JSONObject!) {\n    finishPasskeyLogin(challengeId: $challengeId, credential: $credential) {\n      session {\n        id\n      }\n    }\n  }\n": typeof types.FinishPasskeyLoginDocument,
    "\n  subscription SessionEvents {\n    sessionEvents {\n      type\n      at\n      sessionId\n    }\n  }\n": typeof types.SessionEventsDocument,
    "\n  query Activity($first: Int, $after: String) {\n    session {\n      id\n    }\n    securityEvents(first: $first, after: $after) {\n      edges {\n        cursor\n        node {\n          id\n          type\n          at\n          sessionId\n          ipAddress\n          userAgent\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n": typeof types.ActivityDocument,
};
const documents: Documents = {
    "\n  query Me {\n    me {\n      id\n      username\n      createdAt\n      totpEnabled\n      recoveryCodesLeft\n    }\n    session {\n      id\n      secondFactorPending\n    }\n  }\n": types.MeDocument,
    "\n  query Sessions {\n    session {\n      id\n      data\n    }\n    sessions {\n      id\n      current\n      factors\n      createdAt\n      lastSeenAt\n      expiresAt\n      userAgent\n      ipAddress\n    }\n  }\n": types.SessionsDocument,
    "\n  mutation SignUp($username: String!, $password: String!) {\n    register(username: $username, password: $password) {\n      session {\n        id\n      }\n    }\n  }\n": types.SignUpDocument,
    "\n  mutation LogIn($username: String!, $password: String!) {\n    login(username: $username, password: $password) {\n      session {\n        id\n      }\n      secondFactorRequired\n    }\n  }\n": types.LogInDocument,
    "\n  mutation VerifySecondFactor($code: String!) {\n    verifySecondFactor(code: $code) {\n      session {\n        id\n      }\n    }\n  }\n": types.VerifySecondFactorDocument,
    "\n  mutation RevokeSession($id: ID!) {\n    deleteSession(id: $id)\n  }\n": types.RevokeSessionDocument,
    "\n  mutation LogOutOthers {\n    deleteOtherSessions\n  }\n": types.LogOutOthersDocument,
    "\n  mutation SaveSessionData($data: JSONObject!) {\n    updateSessionData(data: $data) {\n      id\n      data\n    }\n  }\n": types.SaveSessionDataDocument,
    "\n  mutation LogOut {\n    deleteSession\n  }\n": types.LogOutDocument,
    "\n  mutation BeginTotpEnrollment($password: String!) {\n    beginTotpEnrollment(password: $password) {\n      secret\n      uri\n      qrCodeSvg\n    }\n  }\n": types.BeginTotpEnrollmentDocument,
    "\n  mutation ConfirmTotpEnrollment($code: String!) {\n    confirmTotpEnrollment(code: $code)\n  }\n": types.ConfirmTotpEnrollmentDocument,
    "\n  mutation DisableTotp($password: String!, $code: String!) {\n    disableTotp(password: $password, code: $code)\n  }\n": types.DisableTotpDocument,
    "\n  mutation RegenerateRecoveryCodes($password: String!, $code: String!) {\n    regenerateRecoveryCodes(password: $password, code: $code)\n  }\n": types.RegenerateRecoveryCodesDocument,
    "\n  query Passkeys {\n    passkeys {\n      id\n      name\n      createdAt\n      lastUsedAt\n    }\n  }\n": types.PasskeysDocument,
    "\n  mutation BeginPasskeyRegistration {\n    beginPasskeyRegistration {\n      challengeId\n      options\n    }\n  }\n": types.BeginPasskeyRegistrationDocument,
    "\n  mutation FinishPasskeyRegistration($challengeId: ID!, $credential: JSONObject!, $name: String) {\n    finishPasskeyRegistration(challengeId: $challengeId, credential: $credential, name: $name) {\n      id\n      name\n    }\n  }\n": types.FinishPasskeyRegistrationDocument,
    "\n  mutation RenamePasskey($id: ID!, $name: String!) {\n    renamePasskey(id: $id, name: $name) {\n      id\n      name\n    }\n  }\n": types.RenamePasskeyDocument,
    "\n  mutation DeletePasskey($id: ID!) {\n    deletePasskey(id: $id)\n  }\n": types.DeletePasskeyDocument,
    "\n  mutation BeginPasskeyLogin {\n    beginPasskeyLogin {\n      challengeId\n      options\n    }\n  }\n": types.BeginPasskeyLoginDocument,
    "\n  mutation FinishPasskeyLogin($challengeId: ID!, $credential: JSONObject!) {\n    finishPasskeyLogin(challengeId: $challengeId, credential: $credential) {\n      session {\n        id\n      }\n    }\n  }\n": types.FinishPasskeyLoginDocument,
    "\n  subscription SessionEvents {\n    sessionEvents {\n      type\n      at\n      sessionId\n    }\n  }\n": types.SessionEventsDocument,
    "\n  query Activity($first: Int, $after: String) {\n    session {\n      id\n    }\n    securityEvents(first: $first, after: $after) {\n      edges {\n        cursor\n        node {\n          id\n          type\n          at\n          sessionId\n          ipAddress\n          userAgent\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n": types.ActivityDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Me {\n    me {\n      id\n      username\n      createdAt\n      totpEnabled\n      recoveryCodesLeft\n    }\n    session {\n      id\n      secondFactorPending\n    }\n  }\n"): (typeof documents)["\n  query Me {\n    me {\n      id\n      username\n      createdAt\n      totpEnabled\n      recoveryCodesLeft\n    }\n    session {\n      id\n      secondFactorPending\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Sessions {\n    session {\n      id\n      data\n    }\n    sessions {\n      id\n      current\n      factors\n      createdAt\n      lastSeenAt\n      expiresAt\n      userAgent\n      ipAddress\n    }\n  }\n"): (typeof documents)["\n  query Sessions {\n    session {\n      id\n      data\n    }\n    sessions {\n      id\n      current\n      factors\n      createdAt\n      lastSeenAt\n      expiresAt\n      userAgent\n      ipAddress\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SignUp($username: String!, $password: String!) {\n    register(username: $username, password: $password) {\n      session {\n        id\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation SignUp($username: String!, $password: String!) {\n    register(username: $username, password: $password) {\n      session {\n        id\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation LogIn($username: String!, $password: String!) {\n    login(username: $username, password: $password) {\n      session {\n        id\n      }\n      secondFactorRequired\n    }\n  }\n"): (typeof documents)["\n  mutation LogIn($username: String!, $password: String!) {\n    login(username: $username, password: $password) {\n      session {\n        id\n      }\n      secondFactorRequired\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation VerifySecondFactor($code: String!) {\n    verifySecondFactor(code: $code) {\n      session {\n        id\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation VerifySecondFactor($code: String!) {\n    verifySecondFactor(code: $code) {\n      session {\n        id\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RevokeSession($id: ID!) {\n    deleteSession(id: $id)\n  }\n"): (typeof documents)["\n  mutation RevokeSession($id: ID!) {\n    deleteSession(id: $id)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation LogOutOthers {\n    deleteOtherSessions\n  }\n"): (typeof documents)["\n  mutation LogOutOthers {\n    deleteOtherSessions\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SaveSessionData($data: JSONObject!) {\n    updateSessionData(data: $data) {\n      id\n      data\n    }\n  }\n"): (typeof documents)["\n  mutation SaveSessionData($data: JSONObject!) {\n    updateSessionData(data: $data) {\n      id\n      data\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation LogOut {\n    deleteSession\n  }\n"): (typeof documents)["\n  mutation LogOut {\n    deleteSession\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation BeginTotpEnrollment($password: String!) {\n    beginTotpEnrollment(password: $password) {\n      secret\n      uri\n      qrCodeSvg\n    }\n  }\n"): (typeof documents)["\n  mutation BeginTotpEnrollment($password: String!) {\n    beginTotpEnrollment(password: $password) {\n      secret\n      uri\n      qrCodeSvg\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation ConfirmTotpEnrollment($code: String!) {\n    confirmTotpEnrollment(code: $code)\n  }\n"): (typeof documents)["\n  mutation ConfirmTotpEnrollment($code: String!) {\n    confirmTotpEnrollment(code: $code)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DisableTotp($password: String!, $code: String!) {\n    disableTotp(password: $password, code: $code)\n  }\n"): (typeof documents)["\n  mutation DisableTotp($password: String!, $code: String!) {\n    disableTotp(password: $password, code: $code)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RegenerateRecoveryCodes($password: String!, $code: String!) {\n    regenerateRecoveryCodes(password: $password, code: $code)\n  }\n"): (typeof documents)["\n  mutation RegenerateRecoveryCodes($password: String!, $code: String!) {\n    regenerateRecoveryCodes(password: $password, code: $code)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Passkeys {\n    passkeys {\n      id\n      name\n      createdAt\n      lastUsedAt\n    }\n  }\n"): (typeof documents)["\n  query Passkeys {\n    passkeys {\n      id\n      name\n      createdAt\n      lastUsedAt\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation BeginPasskeyRegistration {\n    beginPasskeyRegistration {\n      challengeId\n      options\n    }\n  }\n"): (typeof documents)["\n  mutation BeginPasskeyRegistration {\n    beginPasskeyRegistration {\n      challengeId\n      options\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation FinishPasskeyRegistration($challengeId: ID!, $credential: JSONObject!, $name: String) {\n    finishPasskeyRegistration(challengeId: $challengeId, credential: $credential, name: $name) {\n      id\n      name\n    }\n  }\n"): (typeof documents)["\n  mutation FinishPasskeyRegistration($challengeId: ID!, $credential: JSONObject!, $name: String) {\n    finishPasskeyRegistration(challengeId: $challengeId, credential: $credential, name: $name) {\n      id\n      name\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RenamePasskey($id: ID!, $name: String!) {\n    renamePasskey(id: $id, name: $name) {\n      id\n      name\n    }\n  }\n"): (typeof documents)["\n  mutation RenamePasskey($id: ID!, $name: String!) {\n    renamePasskey(id: $id, name: $name) {\n      id\n      name\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DeletePasskey($id: ID!) {\n    deletePasskey(id: $id)\n  }\n"): (typeof documents)["\n  mutation DeletePasskey($id: ID!) {\n    deletePasskey(id: $id)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation BeginPasskeyLogin {\n    beginPasskeyLogin {\n      challengeId\n      options\n    }\n  }\n"): (typeof documents)["\n  mutation BeginPasskeyLogin {\n    beginPasskeyLogin {\n      challengeId\n      options\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation FinishPasskeyLogin($challengeId: ID!, $credential: JSONObject!) {\n    finishPasskeyLogin(challengeId: $challengeId, credential: $credential) {\n      session {\n        id\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation FinishPasskeyLogin($challengeId: ID!, $credential: JSONObject!) {\n    finishPasskeyLogin(challengeId: $challengeId, credential: $credential) {\n      session {\n        id\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription SessionEvents {\n    sessionEvents {\n      type\n      at\n      sessionId\n    }\n  }\n"): (typeof documents)["\n  subscription SessionEvents {\n    sessionEvents {\n      type\n      at\n      sessionId\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Activity($first: Int, $after: String) {\n    session {\n      id\n    }\n    securityEvents(first: $first, after: $after) {\n      edges {\n        cursor\n        node {\n          id\n          type\n          at\n          sessionId\n          ipAddress\n          userAgent\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n"): (typeof documents)["\n  query Activity($first: Int, $after: String) {\n    session {\n      id\n    }\n    securityEvents(first: $first, after: $after) {\n      edges {\n        cursor\n        node {\n          id\n          type\n          at\n          sessionId\n          ipAddress\n          userAgent\n        }\n      }\n      pageInfo {\n        hasNextPage\n        endCursor\n      }\n    }\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;