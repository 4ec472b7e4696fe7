use std::fmt;

use super::Layer;

/// A rule the checker enforces; its [`id`](Rule::id) is stable and appears
/// in every violation line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// A workspace crate depends on a workspace crate of a layer it may not use.
    LayerDependency,
    /// A domain crate's dependency closure holds a banned external crate.
    DomainBannedCrate,
    /// An app-api crate's dependency closure holds a banned external crate.
    AppApiBannedCrate,
    /// An infrastructure crate's dependency closure holds a banned external crate.
    InfrastructureBannedCrate,
    /// A frontend-bff crate's dependency closure holds a banned external crate.
    BffBannedCrate,
    /// A tests crate's dependency closure holds a crate banned by configuration.
    TestsBannedCrate,
    /// A runtime crate depends on a crate banned for the runtime layer.
    RuntimeBannedCrate,
    /// Workspace crates form a dependency cycle, dev-dependencies included.
    NoCycles,
    /// A workspace crate sits in a directory that names no layer.
    UnclassifiedCrate,
    /// Application code names an HTTP or web-framework crate.
    ApplicationNoHttp,
    /// Application code names an infrastructure, frontend-bff or persistence crate.
    ApplicationNoInfrastructure,
    /// API code names an infrastructure or persistence crate.
    ApiNoInfrastructure,
    /// A file of the composition-root crate other than its configured
    /// composition-root files names an infrastructure or frontend-bff crate.
    CompositionRootOnly,
    /// A configured rule found nothing to apply to.
    RuleMatchedNothing,
    /// A source file that a rule must read could not be read or parsed.
    SourceUnparseable,
}

impl Rule {
    /// The stable identifier printed in violation lines.
    pub fn id(self) -> &'static str {
        match self {
            Rule::LayerDependency => "layer-dependency",
            Rule::DomainBannedCrate => "domain-banned-crate",
            Rule::AppApiBannedCrate => "app-api-banned-crate",
            Rule::InfrastructureBannedCrate => "infrastructure-banned-crate",
            Rule::BffBannedCrate => "bff-banned-crate",
            Rule::TestsBannedCrate => "tests-banned-crate",
            Rule::RuntimeBannedCrate => "runtime-banned-crate",
            Rule::NoCycles => "no-cycles",
            Rule::UnclassifiedCrate => "unclassified-crate",
            Rule::ApplicationNoHttp => "application-no-http",
            Rule::ApplicationNoInfrastructure => "application-no-infrastructure",
            Rule::ApiNoInfrastructure => "api-no-infrastructure",
            Rule::CompositionRootOnly => "composition-root-only",
            Rule::RuleMatchedNothing => "rule-matched-nothing",
            Rule::SourceUnparseable => "source-unparseable",
        }
    }

    pub(crate) fn banned_crate(layer: Layer) -> Rule {
        match layer {
            Layer::Domain => Rule::DomainBannedCrate,
            Layer::AppApi => Rule::AppApiBannedCrate,
            Layer::Infrastructure => Rule::InfrastructureBannedCrate,
            Layer::Bff => Rule::BffBannedCrate,
            Layer::Tests => Rule::TestsBannedCrate,
            Layer::Runtime => Rule::RuntimeBannedCrate,
        }
    }

    /// Why the rule exists, in words. Rules whose explanation depends on
    /// the layer or on what was missing get it from the checker instead.
    pub(crate) fn explanation(self) -> &'static str {
        match self {
            Rule::LayerDependency => "a layer may depend only on the layers beneath it",
            Rule::DomainBannedCrate => {
                "the domain layer must not depend on an async runtime, web framework, \
                 HTTP client, ORM, SQL driver or cache client"
            }
            Rule::AppApiBannedCrate => {
                "the app-api layer must not depend on an ORM, SQL driver or cache client; \
                 persistence belongs to infrastructure"
            }
            Rule::InfrastructureBannedCrate => {
                "the infrastructure layer must not depend on a web framework; \
                 HTTP endpoints belong to app-api"
            }
            Rule::BffBannedCrate => {
                "the frontend-bff layer must not depend on an ORM or SQL driver; \
                 it reaches data through app-api"
            }
            Rule::TestsBannedCrate => "the tests layer must not depend on a crate banned for it",
            Rule::RuntimeBannedCrate => {
                "the runtime layer must not depend on a crate banned for it"
            }
            Rule::NoCycles => {
                "workspace crates must not form a dependency cycle, dev-dependencies included"
            }
            Rule::UnclassifiedCrate => {
                "every workspace crate must live in a directory named domain, app-api, \
                 infrastructure, frontend-bff, tests or runtime, or be classified explicitly"
            }
            Rule::ApplicationNoHttp => {
                "application code must not use HTTP or web-framework crates; \
                 those belong to the API code"
            }
            Rule::ApplicationNoInfrastructure => {
                "application code must not use infrastructure, runtime, frontend-bff or \
                 persistence crates; it works through domain ports"
            }
            Rule::ApiNoInfrastructure => {
                "API code must not use infrastructure, runtime or persistence crates; \
                 it calls application code"
            }
            Rule::CompositionRootOnly => {
                "only the composition-root files may use infrastructure, runtime or \
                 frontend-bff crates"
            }
            Rule::RuleMatchedNothing => "every configured rule must match something",
            Rule::SourceUnparseable => {
                "the source file could not be read and parsed as Rust, \
                 so its references could not be checked"
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}
