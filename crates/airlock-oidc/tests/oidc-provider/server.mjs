// A real OpenID Provider (the `oidc-provider` package) for the airlock-oidc
// integration tests. Test-only: it listens on loopback, generates throwaway
// keys, and exposes an admin API that hands out its PRIVATE keys so the Rust
// tests can sign arbitrary claims with the very keys the provider publishes.
// Never run this anywhere but a test.
//
// Usage: node server.mjs [--port N]   (default: PORT env, else 0 = any free port)
// Prints one line `LISTENING http://127.0.0.1:<port>` once ready.
//
// Admin endpoints (under /__admin, JSON):
//   GET  /__admin/keys    -> { keys: [private JWKs] } currently published
//   POST /__admin/rotate  <- { add: [{ kty: "RSA"|"EC"|"OKP", kid }], remove: [kid] }
//                         -> { keys: [...] }; added keys go first (they sign new
//                            tokens). The Provider object is rebuilt with the new
//                            keystore on the same port: rotation at the provider
//                            while the Rust validator keeps running.
//   GET  /__admin/stats   -> { discovery: n, jwks: n } requests served so far
//
//   POST /__admin/clients <- { client_id, client_secret?, redirect_uris }
//                         -> { clients: n }; adds an authorization-code client
//                            (the web UI's, whose redirect URI names the port
//                            the gateway got), rebuilding the Provider as
//                            rotate does.
//
// Clients (client_credentials only):
//   agent-7 / agent-7-secret   extra claims: groups [agents, payments]
//   svc-1   / svc-1-secret     extra claims: groups [ops], principal_type "svc"
//
// People, for the authorization code flow: the provider's login page
// (/interaction/<uid>, this file's own small form) takes an account name
// and grants the requested scopes at once. Accounts and their claims
// (scope `groups` puts `groups` and `principal_type` in the ID token):
//   olivia   groups [ops, dba]
//   bot-9    groups [agents], principal_type "agent" (not a person)
//
// Resource indicators -> JWT access tokens:
//   urn:airlock          aud airlock, RS256
//   urn:airlock:es256    aud airlock, ES256
//   urn:airlock:eddsa    aud airlock, EdDSA
//   urn:airlock:short    aud airlock, RS256, lives 5 seconds (long enough to connect on a loaded machine)
//   urn:other            aud other,   RS256

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: { port: { type: 'string' } },
});
const port = Number(args.port ?? process.env.PORT ?? 0);
const host = '127.0.0.1';

function generateKey({ kty, kid }) {
  let pair;
  if (kty === 'RSA') {
    pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  } else if (kty === 'EC') {
    pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  } else if (kty === 'OKP') {
    pair = crypto.generateKeyPairSync('ed25519');
  } else {
    throw new Error(`unsupported kty ${kty}`);
  }
  return { ...pair.privateKey.export({ format: 'jwk' }), kid, use: 'sig' };
}

let keys = [
  generateKey({ kty: 'RSA', kid: 'rsa-1' }),
  generateKey({ kty: 'EC', kid: 'ec-1' }),
  generateKey({ kty: 'OKP', kid: 'ed-1' }),
];

const stats = { discovery: 0, jwks: 0 };

const resourceServers = {
  'urn:airlock': { audience: 'airlock', alg: 'RS256' },
  'urn:airlock:es256': { audience: 'airlock', alg: 'ES256' },
  'urn:airlock:eddsa': { audience: 'airlock', alg: 'EdDSA' },
  'urn:airlock:short': { audience: 'airlock', alg: 'RS256', ttl: 5 },
  'urn:other': { audience: 'other', alg: 'RS256' },
};

const accounts = {
  olivia: { groups: ['ops', 'dba'] },
  'bot-9': { groups: ['agents'], principal_type: 'agent' },
};

// Authorization-code clients added through /__admin/clients.
const webClients = [];

const extraClaims = {
  'agent-7': { groups: ['agents', 'payments'] },
  'svc-1': { groups: ['ops'], principal_type: 'svc' },
};

function buildProvider(issuer) {
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'agent-7',
        client_secret: 'agent-7-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      },
      {
        // A public client for `airlock login` (device authorization flow).
        client_id: 'airlock-cli',
        token_endpoint_auth_method: 'none',
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code'],
        response_types: [],
        redirect_uris: [],
      },
      {
        client_id: 'svc-1',
        client_secret: 'svc-1-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
      },
      ...webClients,
    ],
    // Any account id the device flow approves exists (as the provider's
    // default does); the login page's accounts also carry their claims.
    findAccount: async (_ctx, id) => ({
      accountId: id,
      claims: async () => ({ sub: id, ...(accounts[id] ?? {}) }),
    }),
    claims: { openid: ['sub'], groups: ['groups', 'principal_type'] },
    // Scope claims go into the ID token itself (the web UI reads no
    // userinfo).
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    jwks: { keys },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      deviceFlow: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => 'urn:airlock',
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resourceIndicator) => {
          const server = resourceServers[resourceIndicator];
          if (!server) {
            throw new Provider.errors.InvalidTarget();
          }
          return {
            scope: 'db:read db:write',
            audience: server.audience,
            accessTokenFormat: 'jwt',
            ...(server.ttl ? { accessTokenTTL: server.ttl } : {}),
            jwt: { sign: { alg: server.alg } },
          };
        },
      },
    },
    extraTokenClaims: async (_ctx, token) => extraClaims[token.clientId],
  });
  provider.on('server_error', (_ctx, error) => {
    console.error('oidc-provider server_error', error);
  });
  provider.on('grant.error', (_ctx, error) => {
    console.error('oidc-provider grant.error', error.message, error.error_detail ?? '');
  });
  return provider;
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

let issuer;
let callback;
let provider;

async function admin(req, res, path) {
  if (req.method === 'GET' && path === '/__admin/keys') {
    return sendJson(res, 200, { keys });
  }
  if (req.method === 'GET' && path === '/__admin/stats') {
    return sendJson(res, 200, stats);
  }
  if (req.method === 'POST' && path === '/__admin/rotate') {
    const body = await readJson(req);
    const remove = new Set(body.remove ?? []);
    const added = (body.add ?? []).map(generateKey);
    keys = [...added, ...keys.filter((key) => !remove.has(key.kid))];
    provider = buildProvider(issuer);
    callback = provider.callback();
    return sendJson(res, 200, { keys });
  }
  if (req.method === 'POST' && path === '/__admin/clients') {
    const body = await readJson(req);
    webClients.push({
      client_id: body.client_id,
      ...(body.client_secret
        ? { client_secret: body.client_secret }
        : { token_endpoint_auth_method: 'none' }),
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: body.redirect_uris,
    });
    provider = buildProvider(issuer);
    callback = provider.callback();
    return sendJson(res, 200, { clients: webClients.length });
  }
  // Stands in for a person confirming a device code in the browser: the
  // provider's device flow then issues tokens for `account`.
  if (req.method === 'POST' && path === '/__admin/approve-device') {
    const body = await readJson(req);
    const raw = String(body.user_code ?? '');
    let code;
    for (const candidate of [raw, raw.replace(/[^A-Za-z0-9]/g, ''), raw.toUpperCase()]) {
      code = await provider.DeviceCode.findByUserCode(candidate);
      if (code) break;
    }
    if (!code) return sendJson(res, 404, { error: 'unknown user code' });
    const grant = new provider.Grant({ accountId: body.account, clientId: code.clientId });
    grant.addOIDCScope(code.scope ?? 'openid');
    grant.addResourceScope('urn:airlock', 'db:read db:write');
    const grantId = await grant.save();
    code.resource = code.resource ?? 'urn:airlock';
    code.accountId = body.account;
    code.grantId = grantId;
    code.authTime = Math.floor(Date.now() / 1000);
    await code.save();
    return sendJson(res, 200, { approved: true });
  }
  return sendJson(res, 404, { error: 'no such admin endpoint' });
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// The provider's login page: an account name, then the grant of every
// requested scope (no separate consent step).
async function interaction(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test provider sign-in</title></head>
<body><h1>Test identity provider</h1><p>Signing in to ${escape(details.params.client_id)}</p>
<form method="post" action="/interaction/${escape(uid)}">
<label for="account">Account</label> <input id="account" name="account" autofocus>
<button type="submit">Continue</button></form></body></html>`);
    return;
  }
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const account = new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('account') ?? '';
  if (!accounts[account]) {
    await provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'unknown account',
    }, { mergeWithLastSubmission: false });
    return;
  }
  const grant = new provider.Grant({ accountId: account, clientId: details.params.client_id });
  grant.addOIDCScope(String(details.params.scope ?? 'openid'));
  grant.addResourceScope('urn:airlock', 'db:read db:write');
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, {
    login: { accountId: account },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

const server = http.createServer((req, res) => {
  const path = new URL(req.url, issuer).pathname;
  if (path.startsWith('/__admin/')) {
    admin(req, res, path).catch((error) => sendJson(res, 500, { error: String(error) }));
    return;
  }
  const uid = path.match(/^\/interaction\/([A-Za-z0-9_-]+)$/)?.[1];
  if (uid) {
    interaction(req, res, uid).catch((error) => {
      console.error('interaction failed', error);
      if (!res.headersSent) sendJson(res, 500, { error: String(error) });
    });
    return;
  }
  if (path === '/.well-known/openid-configuration') stats.discovery += 1;
  if (path === '/jwks') stats.jwks += 1;
  callback(req, res);
});

server.listen(port, host, () => {
  issuer = `http://${host}:${server.address().port}`;
  provider = buildProvider(issuer);
  callback = provider.callback();
  console.log(`LISTENING ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
