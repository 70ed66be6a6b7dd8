using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;
using ProtoType = Google.Protobuf.Reflection.FieldDescriptorProto.Types.Type;

namespace Legate.Tests.Config.Validation;

/// <summary>
/// A message built at run time with one field of every kind PGV has rules for, so that rule
/// kinds the Envoy protos never use (sint32, fixed64, timestamps...) can be checked on a field
/// of the right type. Only the descriptors are used: rules are applied to values directly.
/// </summary>
internal static class TestKinds
{
    private static readonly MessageDescriptor s_message = Build();

    public static FieldDescriptor Field(string name) =>
        s_message.FindFieldByName(name) ?? throw new ArgumentException("no test field " + name, nameof(name));

    private static MessageDescriptor Build()
    {
        var message = new DescriptorProto { Name = "Kinds" };
        message.EnumType.Add(new EnumDescriptorProto
        {
            Name = "Color",
            Value =
            {
                new EnumValueDescriptorProto { Name = "RED", Number = 0 },
                new EnumValueDescriptorProto { Name = "GREEN", Number = 1 },
                new EnumValueDescriptorProto { Name = "BLUE", Number = 2 },
            },
        });

        var number = 1;
        void Add(string name, ProtoType type, string? typeName = null)
        {
            var field = new FieldDescriptorProto { Name = name, Number = number++, Type = type, Label = FieldDescriptorProto.Types.Label.Optional };
            if (typeName is not null)
            {
                field.TypeName = typeName;
            }

            message.Field.Add(field);
        }

        Add("float", ProtoType.Float);
        Add("double", ProtoType.Double);
        Add("int32", ProtoType.Int32);
        Add("int64", ProtoType.Int64);
        Add("uint32", ProtoType.Uint32);
        Add("uint64", ProtoType.Uint64);
        Add("sint32", ProtoType.Sint32);
        Add("sint64", ProtoType.Sint64);
        Add("fixed32", ProtoType.Fixed32);
        Add("fixed64", ProtoType.Fixed64);
        Add("sfixed32", ProtoType.Sfixed32);
        Add("sfixed64", ProtoType.Sfixed64);
        Add("bool", ProtoType.Bool);
        Add("string", ProtoType.String);
        Add("bytes", ProtoType.Bytes);
        Add("color", ProtoType.Enum, ".pgvtest.Kinds.Color");
        Add("duration", ProtoType.Message, ".google.protobuf.Duration");
        Add("timestamp", ProtoType.Message, ".google.protobuf.Timestamp");
        Add("any", ProtoType.Message, ".google.protobuf.Any");
        Add("bool_value", ProtoType.Message, ".google.protobuf.BoolValue");
        Add("uint32_value", ProtoType.Message, ".google.protobuf.UInt32Value");

        var file = new FileDescriptorProto
        {
            Name = "legate/pgv_test_kinds.proto",
            Package = "pgvtest",
            Syntax = "proto3",
            Dependency = { "google/protobuf/duration.proto", "google/protobuf/timestamp.proto", "google/protobuf/any.proto", "google/protobuf/wrappers.proto" },
            MessageType = { message },
        };
        var files = FileDescriptor.BuildFromByteStrings(
        [
            DurationReflection.Descriptor.SerializedData,
            TimestampReflection.Descriptor.SerializedData,
            AnyReflection.Descriptor.SerializedData,
            WrappersReflection.Descriptor.SerializedData,
            file.ToByteString(),
        ]);
        return files[^1].MessageTypes[0];
    }
}
