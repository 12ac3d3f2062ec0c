// Real OpenID provider for e2e tests (oidc-provider 9.13.3). Config via env, see below.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import * as jose from 'jose';

const env = process.env;
// oidc-provider prints dev-mode NOTICEs (console.info, stdout) and WARNINGs (stderr), e.g.
// "Unsupported runtime" on Node 20. Keep stdout to the ready line; drop them unless OP_VERBOSE.
const quiet = (out) => (...a) => {
  if (env.OP_VERBOSE || !String(a[0]).startsWith('oidc-provider ')) out(...a);
};
console.info = quiet(console.error);
console.warn = quiet(console.warn);
const { default: Provider } = await import('oidc-provider');

const issuer = env.OP_ISSUER || 'http://127.0.0.1:9080';
const idTokenAlg = env.OP_ID_TOKEN_ALG || 'RS256';
const keysFile = env.OP_KEYS || 'op-keys.json'; // created if missing (OP_ALGS, default = id token alg)

async function makeKeys() {
  const prefix = env.OP_KID_PREFIX || 'k1';
  const keys = [];
  for (const alg of (env.OP_ALGS || idTokenAlg).split(',').map((s) => s.trim())) {
    const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
    keys.push({ ...(await jose.exportJWK(privateKey)), kid: `${prefix}-${alg.toLowerCase()}`, alg, use: 'sig' });
  }
  fs.writeFileSync(keysFile, JSON.stringify({ keys }, null, 2));
}
if (!fs.existsSync(keysFile)) await makeKeys();
const jwks = JSON.parse(fs.readFileSync(keysFile, 'utf8'));
if (!jwks.keys.some((k) => k.alg === idTokenAlg)) {
  console.error(`op: ${keysFile} has no ${idTokenAlg} key (OP_ID_TOKEN_ALG)`);
  process.exit(1);
}

function users() {
  if (env.OP_USERS_FILE) return JSON.parse(fs.readFileSync(env.OP_USERS_FILE, 'utf8'));
  return JSON.parse(env.OP_USERS || '{}');
}

const claimNames = ['preferred_username', 'name', 'email', 'groups'];

const provider = new Provider(issuer, {
  clients: [{
    client_id: env.OP_CLIENT_ID || 'pgw',
    client_secret: env.OP_CLIENT_SECRET || 'secret',
    redirect_uris: [env.OP_REDIRECT_URI || 'http://127.0.0.1:8080/callback'],
    post_logout_redirect_uris: [env.OP_POST_LOGOUT_URI || 'http://127.0.0.1:8080/'],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: idTokenAlg,
  }],
  jwks,
  responseTypes: ['code'],
  pkce: { required: () => true }, // only S256 is supported by 9.x
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false, // put scope-requested claims (groups...) into the ID token
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  async findAccount(ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        const u = users()[sub] || {};
        return {
          sub,
          preferred_username: sub,
          name: u.name || sub,
          ...(u.email ? { email: u.email } : {}),
          groups: u.groups || [],
        };
      },
    };
  },
  async loadExistingGrant(ctx) { // auto-consent
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile email groups');
    grant.addOIDCClaims(claimNames);
    await grant.save();
    return grant;
  },
  ttl: {
    AccessToken: 300, AuthorizationCode: 60, IdToken: 300, Interaction: 600,
    Session: 3600, Grant: 3600,
  },
  cookies: { keys: ['pgw-e2e-cookie-key-1', 'pgw-e2e-cookie-key-2'] },
});

// The built-in pages @import Google Fonts; strip that so a browser stays on 127.0.0.1.
provider.use(async (ctx, next) => {
  await next();
  if (typeof ctx.body === 'string' && ctx.response.is('html')) {
    ctx.body = ctx.body.replace(/@import url\(https:[^)]*\);?/g, '');
  }
});

for (const ev of ['server_error', 'authorization.error', 'grant.error', 'end_session.error']) {
  provider.on(ev, (ctx, err) => console.error(`op ${ev}: ${err.message} ${err.error_description || ''}`));
}

let server;
if (env.OP_TLS_CERT) {
  server = https.createServer({
    cert: fs.readFileSync(env.OP_TLS_CERT), key: fs.readFileSync(env.OP_TLS_KEY),
  }, provider.callback());
} else {
  server = http.createServer(provider.callback());
}
server.listen(Number(env.OP_PORT || 9080), env.OP_HOST || '127.0.0.1', () => {
  console.log(`op ready ${issuer}`);
});
process.on('SIGTERM', () => { server.close(); server.closeAllConnections(); process.exit(0); });
process.on('SIGINT', () => process.exit(0));
