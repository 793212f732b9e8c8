// The API as the browser speaks it: gRPC-Web to the crossroled that served the page, with the token the user
// signed in with in the Authorization header (never in a URL). The clients are generated from proto/ (src/gen).

import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AccessService } from "./gen/crossrole/v1/access_pb";
import { BindingService } from "./gen/crossrole/v1/binding_pb";
import { InventoryService } from "./gen/crossrole/v1/inventory_pb";
import { OperationService } from "./gen/crossrole/v1/operation_pb";
import { OrganizationService } from "./gen/crossrole/v1/organization_pb";

const KEY = "crossrole.token";

/// The token of this tab (sessionStorage: gone when the tab closes; not shared with other tabs or sites).
export const token = {
  get: (): string | null => sessionStorage.getItem(KEY),
  set: (t: string) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

const auth: Interceptor = (next) => async (req) => {
  const t = token.get();
  if (t) req.header.set("authorization", `Bearer ${t}`);
  return next(req);
};

const transport = createGrpcWebTransport({ baseUrl: location.origin, interceptors: [auth] });

export interface Api {
  org: Client<typeof OrganizationService>;
  ops: Client<typeof OperationService>;
  bindings: Client<typeof BindingService>;
  access: Client<typeof AccessService>;
  inventory: Client<typeof InventoryService>;
}

export const api: Api = {
  org: createClient(OrganizationService, transport),
  ops: createClient(OperationService, transport),
  bindings: createClient(BindingService, transport),
  access: createClient(AccessService, transport),
  inventory: createClient(InventoryService, transport),
};

/// What to tell the user about a failed call.
export function describe(e: unknown): string {
  const err = ConnectError.from(e);
  switch (err.code) {
    case Code.Unauthenticated:
      return "The token was refused (unauthenticated). Sign in again with a valid token.";
    case Code.PermissionDenied:
      return `This token may not do that: ${err.rawMessage}`;
    case Code.Unavailable:
      return `crossroled is unavailable: ${err.rawMessage}`;
    default:
      return `${Code[err.code] ?? err.code}: ${err.rawMessage}`;
  }
}

/// Whether crossroled said there is no such thing (no finished inventory yet, say).
export function isNotFound(e: unknown): boolean {
  return ConnectError.from(e).code === Code.NotFound;
}

export function isUnauthenticated(e: unknown): boolean {
  return ConnectError.from(e).code === Code.Unauthenticated;
}
