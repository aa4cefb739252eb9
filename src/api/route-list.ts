import type { FastifyInstance, HTTPMethods } from 'fastify';
import fp from 'fastify-plugin';

export interface RouteInfo {
  method: string;
  url: string;
  public: boolean;
  /** The route declares a body schema (JSON body). */
  jsonBody: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route this app registered (one row per method), for the refusal-matrix test and diagnostics. */
    routeList: RouteInfo[];
  }
}

/** Records every route as it is registered, so a test can walk all of them and none is forgotten. */
export const routeList = fp(async (app: FastifyInstance) => {
  const list: RouteInfo[] = [];
  app.decorate('routeList', list);
  app.addHook('onRoute', (route) => {
    const methods = ([] as HTTPMethods[]).concat(route.method as HTTPMethods | HTTPMethods[]);
    for (const method of methods) {
      list.push({ method: String(method).toUpperCase(), url: route.url, public: route.config?.public === true, jsonBody: Boolean(route.schema?.body) });
    }
  });
});
