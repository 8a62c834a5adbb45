//! deploy-trigger: an image pushed to ECR reaches every ECS service that opted in for its
//! repository, pinned by digest; the rollout is verified from ECS's own deployment state; chat can
//! deploy, roll back to the last verified deployment, and ask for status.

pub mod act;
pub mod commands;
pub mod config;
pub mod contract;
pub mod decide;
pub mod doctor;
pub mod handler;
pub mod observe;
pub mod report;
