/** The paynet TypeScript client: profiles and mTLS channels, typed gRPC clients, the payment envelope, a buyer. */
export * from "./envelope.js";
export * from "./profile.js";
export * from "./rpc.js";
export * from "./buyer.js";
export * as account from "./gen/interbank/v1/account_pb.js";
export * as authorization from "./gen/interbank/v1/authorization_pb.js";
export * as common from "./gen/interbank/v1/common_pb.js";
export * as notification from "./gen/interbank/v1/notification_pb.js";
export * as order from "./gen/interbank/v1/order_pb.js";
