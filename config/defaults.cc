#include "config/defaults.h"

#include "algorithms/registry.h"
#include "config/fleet.h"
#include "google/protobuf/descriptor.h"

namespace fedsim {

namespace pb = google::protobuf;

void FillDeclaredDefaults(pb::Message* m) {
  using F = pb::FieldDescriptor;
  const pb::Descriptor* d = m->GetDescriptor();
  const pb::Reflection* r = m->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const F* f = d->field(i);
    if (f->is_repeated()) {
      if (f->cpp_type() == F::CPPTYPE_MESSAGE) {
        for (int k = 0; k < r->FieldSize(*m, f); ++k) {
          FillDeclaredDefaults(r->MutableRepeatedMessage(m, f, k));
        }
      }
      continue;
    }
    if (f->cpp_type() == F::CPPTYPE_MESSAGE) {
      if (r->HasField(*m, f)) FillDeclaredDefaults(r->MutableMessage(m, f));
      continue;
    }
    // A scalar member of a oneof is a choice, never a default.
    if (f->containing_oneof() != nullptr) continue;
    if (r->HasField(*m, f) || !f->has_default_value()) continue;
    switch (f->cpp_type()) {
      case F::CPPTYPE_INT32:
        r->SetInt32(m, f, f->default_value_int32());
        break;
      case F::CPPTYPE_INT64:
        r->SetInt64(m, f, f->default_value_int64());
        break;
      case F::CPPTYPE_UINT32:
        r->SetUInt32(m, f, f->default_value_uint32());
        break;
      case F::CPPTYPE_UINT64:
        r->SetUInt64(m, f, f->default_value_uint64());
        break;
      case F::CPPTYPE_DOUBLE:
        r->SetDouble(m, f, f->default_value_double());
        break;
      case F::CPPTYPE_FLOAT:
        r->SetFloat(m, f, f->default_value_float());
        break;
      case F::CPPTYPE_BOOL:
        r->SetBool(m, f, f->default_value_bool());
        break;
      case F::CPPTYPE_STRING:
        r->SetString(m, f, f->default_value_string());
        break;
      case F::CPPTYPE_ENUM:
        r->SetEnum(m, f, f->default_value_enum());
        break;
      case F::CPPTYPE_MESSAGE:
        break;
    }
  }
}

void FillDefaults(config::Scenario* s) {
  if (s->name().empty()) s->set_name("scenario");

  config::Dataset* dataset = s->mutable_dataset();
  if (dataset->source_case() == config::Dataset::SOURCE_NOT_SET) {
    dataset->mutable_fashion_mnist();
  }
  config::Partition* partition = s->mutable_partition();
  if (partition->kind_case() == config::Partition::KIND_NOT_SET) {
    if (dataset->has_synthetic()) {
      partition->mutable_natural();
    } else {
      partition->mutable_iid();
    }
  }
  config::Model* model = s->mutable_model();
  if (model->kind_case() == config::Model::KIND_NOT_SET) model->mutable_mlp();
  if (model->has_mlp() && model->mlp().hidden_size() == 0) {
    model->mutable_mlp()->add_hidden(200);
    model->mutable_mlp()->add_hidden(200);
  }

  FillDevicesDefaults(s->mutable_devices());

  // The rule: the registry's default when none is chosen, selected by its
  // oneof field (config code names no rule), then the rule's own defaults.
  config::Algorithm* algorithm = s->mutable_algorithm();
  if (algorithm->rule_case() == config::Algorithm::RULE_NOT_SET) {
    const pb::FieldDescriptor* field = config::Algorithm::descriptor()->FindFieldByNumber(
        static_cast<int>(DefaultAlgorithm().rule));
    algorithm->GetReflection()->MutableMessage(algorithm, field);
  }
  if (absl::StatusOr<const AlgorithmEntry*> entry = EntryFor(*algorithm);
      entry.ok() && (*entry)->fill_defaults != nullptr) {
    (*entry)->fill_defaults(algorithm);
  }

  FillParticipationDefaults(s->mutable_participation());

  s->mutable_local();
  s->mutable_stop();
  s->mutable_eval();
  s->mutable_clock();
  s->mutable_output();
  s->mutable_limits();

  FillDeclaredDefaults(s);
}

}  // namespace fedsim
